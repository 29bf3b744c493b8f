//! Opening an input: transparent gzip (by magic bytes, not by name) and a peek at the first
//! bytes for format detection, without losing them for the reader.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// How many decompressed bytes detection may look at.
pub(crate) const PEEK_BYTES: usize = 256 * 1024;
const FILE_BUF: usize = 256 * 1024;

/// An opened input: `peek` holds the first bytes of the (decompressed) content and `reader`
/// yields the whole content from byte 0 (the peek included).
pub(crate) struct Opened {
    pub reader: Box<dyn Read>,
    pub peek: Vec<u8>,
    pub gzip: bool,
}

/// Open `path`, decompressing when it starts with the gzip magic.
pub(crate) fn open_content(path: &Path) -> io::Result<(Box<dyn Read>, bool)> {
    content_of(BufReader::with_capacity(FILE_BUF, File::open(path)?))
}

/// The content of `raw`: decompressed when it starts with the gzip magic.
fn content_of<R: BufRead + 'static>(mut raw: R) -> io::Result<(Box<dyn Read>, bool)> {
    let head = raw.fill_buf()?;
    let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if gzip {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(raw)), true))
    } else {
        Ok((Box::new(raw), false))
    }
}

/// Open `path` and peek at up to `PEEK_BYTES` of its content.
pub(crate) fn open_and_peek(path: &Path) -> io::Result<Opened> {
    peek_content(open_content(path)?)
}

/// In-memory input (fuzzing, tests): the same gzip handling and peek as a file.
pub(crate) fn peek_bytes(bytes: Vec<u8>) -> io::Result<Opened> {
    peek_content(content_of(Cursor::new(bytes))?)
}

fn peek_content((mut reader, gzip): (Box<dyn Read>, bool)) -> io::Result<Opened> {
    let mut peek = Vec::with_capacity(8192);
    (&mut reader)
        .take(PEEK_BYTES as u64)
        .read_to_end(&mut peek)?;
    let reader: Box<dyn Read> = Box::new(Cursor::new(peek.clone()).chain(reader));
    Ok(Opened { reader, peek, gzip })
}

/// Skip `n` bytes of `reader` (decompressed streams cannot seek).
pub(crate) fn skip_bytes(reader: &mut dyn Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ends at byte {skipped}, before offset {n}"),
        ));
    }
    Ok(())
}

/// The content of `path` from decompressed byte `offset` on (plain files seek, gzip skips).
pub(crate) fn open_at(path: &Path, offset: u64) -> io::Result<Box<dyn Read>> {
    let (mut reader, gzip) = open_content(path)?;
    if gzip {
        skip_bytes(&mut reader, offset)?;
        Ok(reader)
    } else {
        use std::io::{Seek, SeekFrom};
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(Box::new(BufReader::with_capacity(64 * 1024, f)))
    }
}

/// Read a JSON string literal (quotes included) from the start of `reader`.
pub(crate) fn read_json_string(reader: Box<dyn Read>) -> io::Result<Vec<u8>> {
    let mut r = BufReader::new(reader);
    let mut raw = Vec::new();
    r.read_until(b'"', &mut raw)?;
    if raw != b"\"" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a JSON string",
        ));
    }
    loop {
        r.read_until(b'"', &mut raw)?;
        if !raw.ends_with(b"\"") || raw.len() < 2 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unterminated JSON string",
            ));
        }
        // The quote ends the string unless an odd run of backslashes escapes it.
        let slashes = raw[..raw.len() - 1]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if slashes % 2 == 0 {
            return Ok(raw);
        }
    }
}

/// "byte N (line L, column C)" for a place in the (decompressed) content of `path`. Re-reads
/// the file up to `offset`, so it is used for the one error that stops a file, not per record.
pub(crate) fn describe_place(path: &Path, offset: u64) -> String {
    match line_col(path, offset) {
        Ok((line, col)) => format!("byte {offset} (line {line}, column {col})"),
        Err(_) => format!("byte {offset}"),
    }
}

fn line_col(path: &Path, offset: u64) -> io::Result<(u64, u64)> {
    let (reader, _) = open_content(path)?;
    let mut reader = BufReader::with_capacity(FILE_BUF, reader.take(offset));
    let (mut line, mut line_start, mut pos) = (1u64, 0u64, 0u64);
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        for nl in memchr::memchr_iter(b'\n', chunk) {
            line += 1;
            line_start = pos + nl as u64 + 1;
        }
        pos += chunk.len() as u64;
        let n = chunk.len();
        reader.consume(n);
    }
    Ok((line, offset - line_start + 1))
}
