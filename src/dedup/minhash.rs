//! MinHash signatures over word shingles: a fixed 128 bytes per record, whatever its length.
//!
//! Words are runs of alphanumeric characters, lowercased; a shingle is `SHINGLE` consecutive
//! words (a text shorter than that is one shingle). Each shingle is hashed once to 64 bits,
//! then `PERMS` multiply-shift hashes (`(a·h + b) >> 32`, `a` odd) stand in for the random
//! permutations. The minimum of each is kept as its low 16 bits: two different minima agree
//! on 16 bits with probability 2^-16, so the estimate of the Jaccard similarity (the share of
//! equal positions) is off by at most that much on average, and the signature is half the size.

/// Hash functions per signature.
pub const PERMS: usize = 64;
/// Words per shingle.
pub const SHINGLE: usize = 3;
/// Texts with fewer words get no signature (exact grouping by id and content hash still
/// applies): a handful of words says too little to call two texts near-duplicates.
pub const MIN_WORDS: usize = 8;

/// A record's MinHash signature.
pub type Signature = [u16; PERMS];

/// splitmix64's finaliser: a good 64-bit mix.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fixed (seeded) multipliers and offsets of the `PERMS` hash functions.
struct Perms {
    a: [u64; PERMS],
    b: [u64; PERMS],
}

const fn perms() -> Perms {
    let mut a = [0u64; PERMS];
    let mut b = [0u64; PERMS];
    let mut i = 0;
    let mut s: u64 = 0x6379_6265_7266_696c; // "cyberfil"
    while i < PERMS {
        // splitmix64 as a const generator.
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        a[i] = (z ^ (z >> 31)) | 1;
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        b[i] = z ^ (z >> 31);
        i += 1;
    }
    Perms { a, b }
}

static PERM: Perms = perms();

/// FNV-1a over a word's lowercased bytes (ASCII fast path; other characters lowercased by
/// `char::to_lowercase`).
fn word_hash(w: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    if w.is_ascii() {
        for b in w.bytes() {
            eat(b.to_ascii_lowercase());
        }
    } else {
        let mut buf = [0u8; 4];
        for c in w.chars().flat_map(char::to_lowercase) {
            for b in c.encode_utf8(&mut buf).bytes() {
                eat(b);
            }
        }
    }
    h
}

/// The words of a text (runs of alphanumeric characters), hashed.
pub fn word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 6);
    for_each_word_hash(text, |h| out.push(h));
    out
}

/// `f` with the hash of each word of `text`, in order.
fn for_each_word_hash(text: &str, mut f: impl FnMut(u64)) {
    // Byte by byte: an ASCII byte is classed directly, and only a non-ASCII character is
    // decoded, so the same words come out as splitting on `!char::is_alphanumeric` (the
    // signature is stored, so this must not change), at a fraction of the cost on the mostly
    // ASCII texts of the feeds.
    let bytes = text.as_bytes();
    let mut start = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (alnum, len) = if b.is_ascii() {
            (b.is_ascii_alphanumeric(), 1)
        } else {
            let c = text[i..].chars().next().unwrap_or_default();
            (c.is_alphanumeric(), c.len_utf8())
        };
        match (alnum, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                f(word_hash(&text[s..i]));
                start = None;
            }
            _ => {}
        }
        i += len;
    }
    if let Some(s) = start {
        f(word_hash(&text[s..]));
    }
}

/// The hash of one shingle (its words in order).
#[inline]
fn shingle_hash(words: &[u64]) -> u64 {
    mix64(words.iter().fold(0u64, |h, x| h.rotate_left(21) ^ x))
}

/// The shingle hashes of a text (one per window of `SHINGLE` words).
pub fn shingles(text: &str) -> Vec<u64> {
    let words = word_hashes(text);
    if words.is_empty() {
        return vec![];
    }
    if words.len() < SHINGLE {
        return vec![shingle_hash(&words)];
    }
    words.windows(SHINGLE).map(shingle_hash).collect()
}

/// Shingles handed to the minima at a time by `signature`.
const BLOCK: usize = 64;

/// The signature of a text, or `None` below `MIN_WORDS` words. Streamed: the words' hashes go
/// through a window of `SHINGLE` into a block of shingle hashes that the minima take a block at
/// a time, so nothing is allocated (the same values as `signature_of(&shingles(text))`).
pub fn signature(text: &str) -> Option<Signature> {
    let mut mins = [u32::MAX; PERMS];
    let mut block = [0u64; BLOCK];
    let (mut filled, mut words) = (0, 0usize);
    let mut window = [0u64; SHINGLE];
    for_each_word_hash(text, |h| {
        window.copy_within(1.., 0);
        window[SHINGLE - 1] = h;
        words += 1;
        if words >= SHINGLE {
            block[filled] = shingle_hash(&window);
            filled += 1;
            if filled == BLOCK {
                fold_minima(&mut mins, &block);
                filled = 0;
            }
        }
    });
    // MIN_WORDS >= SHINGLE, so a text with a signature has every shingle in the blocks.
    if words < MIN_WORDS {
        return None;
    }
    fold_minima(&mut mins, &block[..filled]);
    Some(finish(mins))
}

/// Lower `mins` to the minimum of each hash function over the shingles.
#[inline(always)]
fn minima_into(mins: &mut [u32; PERMS], shingles: &[u64]) {
    for &h in shingles {
        for ((m, a), b) in mins.iter_mut().zip(&PERM.a).zip(&PERM.b) {
            let v = (a.wrapping_mul(h).wrapping_add(*b) >> 32) as u32;
            *m = (*m).min(v);
        }
    }
}

#[cfg(test)]
fn minima(shingles: &[u64]) -> [u32; PERMS] {
    let mut mins = [u32::MAX; PERMS];
    minima_into(&mut mins, shingles);
    mins
}

/// `minima_into` compiled for AVX-512 (8 64-bit products per instruction instead of one).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
fn minima_avx512(mins: &mut [u32; PERMS], shingles: &[u64]) {
    minima_into(mins, shingles)
}

/// `minima_into` compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn minima_avx2(mins: &mut [u32; PERMS], shingles: &[u64]) {
    minima_into(mins, shingles)
}

/// `minima_into` on the widest vector unit the CPU has: the same integer arithmetic on every
/// CPU, so the vector paths give the same values as the plain one.
fn fold_minima(mins: &mut [u32; PERMS], shingles: &[u64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
    {
        // SAFETY: the CPU has the features the function is compiled for.
        unsafe { minima_avx512(mins, shingles) }
    } else if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: as above.
        unsafe { minima_avx2(mins, shingles) }
    } else {
        minima_into(mins, shingles)
    }
    #[cfg(not(target_arch = "x86_64"))]
    minima_into(mins, shingles);
}

/// The signature of a set of shingle hashes (duplicates do not matter).
pub fn signature_of(shingles: &[u64]) -> Signature {
    let mut mins = [u32::MAX; PERMS];
    fold_minima(&mut mins, shingles);
    finish(mins)
}

/// The signature from the minima.
fn finish(mins: [u32; PERMS]) -> Signature {
    // The low bits of each minimum, re-mixed so equal minima stay equal and different ones
    // rarely collide.
    let mut sig = [0u16; PERMS];
    for (i, (s, m)) in sig.iter_mut().zip(mins).enumerate() {
        *s = mix64(m as u64 ^ ((i as u64) << 40)) as u16;
    }
    sig
}

/// Estimated Jaccard similarity: the share of equal positions.
pub fn similarity(a: &Signature, b: &Signature) -> f32 {
    let eq = a.iter().zip(b).filter(|(x, y)| x == y).count();
    eq as f32 / PERMS as f32
}

/// Exact Jaccard similarity of two texts' shingle sets (for tests and measurements).
pub fn jaccard(a: &str, b: &str) -> f32 {
    use std::collections::HashSet;
    let sa: HashSet<u64> = shingles(a).into_iter().collect();
    let sb: HashSet<u64> = shingles(b).into_iter().collect();
    if sa.is_empty() && sb.is_empty() {
        return 1.0;
    }
    let inter = sa.intersection(&sb).count();
    inter as f32 / (sa.len() + sb.len() - inter) as f32
}

/// Signature bytes for the store (little-endian u16s).
pub fn to_bytes(s: &Signature) -> Vec<u8> {
    s.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A signature from stored bytes; `None` when the length is wrong.
pub fn from_bytes(b: &[u8]) -> Option<Signature> {
    if b.len() != PERMS * 2 {
        return None;
    }
    let mut s = [0u16; PERMS];
    for (i, c) in b.chunks_exact(2).enumerate() {
        s[i] = u16::from_le_bytes([c[0], c[1]]);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "A heap-based buffer overflow in the PNG decoder of ExampleLib before 2.4.1 \
                     allows remote attackers to execute arbitrary code via a crafted image file.";

    #[test]
    fn equal_texts_have_equal_signatures_and_case_and_punctuation_do_not_matter() {
        let b = A.to_uppercase().replace(['-', '.'], " ");
        assert_eq!(signature(A), signature(&b));
        assert_eq!(
            similarity(&signature(A).unwrap(), &signature(&b).unwrap()),
            1.0
        );
    }

    #[test]
    fn short_texts_get_no_signature() {
        assert!(signature("Reserved for future use.").is_none());
        assert!(signature("").is_none());
        assert!(signature("one two three four five six seven eight").is_some());
    }

    #[test]
    fn estimate_tracks_exact_jaccard() {
        // Vary the number of changed words; the estimate stays within a few 1/64 steps.
        let words: Vec<String> = (0..120).map(|i| format!("w{i}")).collect();
        for changed in [0usize, 5, 15, 30, 60] {
            let mut other = words.clone();
            for (k, w) in other.iter_mut().enumerate().take(changed) {
                *w = format!("x{}", k * 7);
            }
            let (a, b) = (words.join(" "), other.join(" "));
            let exact = jaccard(&a, &b);
            let est = similarity(&signature(&a).unwrap(), &signature(&b).unwrap());
            assert!(
                (exact - est).abs() < 0.2,
                "changed {changed}: exact {exact}, estimate {est}"
            );
        }
        let unrelated: Vec<String> = (0..120).map(|i| format!("u{i}")).collect();
        let est = similarity(
            &signature(&words.join(" ")).unwrap(),
            &signature(&unrelated.join(" ")).unwrap(),
        );
        assert!(est < 0.1, "unrelated texts estimated at {est}");
    }

    #[test]
    fn every_code_path_gives_the_same_minima() {
        let sh = shingles(A);
        let plain = minima(&sh);
        #[cfg(target_arch = "x86_64")]
        {
            let vector = |f: unsafe fn(&mut [u32; PERMS], &[u64])| {
                let mut m = [u32::MAX; PERMS];
                unsafe { f(&mut m, &sh) };
                m
            };
            if std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                assert_eq!(vector(minima_avx512), plain);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                assert_eq!(vector(minima_avx2), plain);
            }
        }
        // A fixed value: the signature scheme is part of the store format.
        assert_eq!(signature(A).unwrap()[..4], [33204, 45041, 52251, 10768]);
    }

    #[test]
    fn word_hashes_split_like_unicode_alphanumeric() {
        let reference = |t: &str| -> Vec<u64> {
            t.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(word_hash)
                .collect()
        };
        for t in [
            A,
            "",
            "   ",
            "x",
            "Überlauf im Parser: Pufferüberlauf (CVE-2024-1234) — ошибка ДОСТУПА, 漏洞 ٣٤ ⅻ",
            "tab\tseparated\u{a0}nbsp\u{2009}thin\u{200b}zero-width é\u{301}clair",
            "ends with ü",
            "émoji 😀 between 🙂words",
        ] {
            assert_eq!(word_hashes(t), reference(t), "{t:?}");
        }
    }

    /// The streamed signature against the one from the whole shingle list, around the block
    /// size and the word-count limit, with Unicode words.
    #[test]
    fn streamed_signature_equals_the_shingle_list_one() {
        let mut rng = crate::rng::Rng::new(11);
        let vocab = [
            "heap",
            "overflow",
            "in",
            "the",
            "PNG",
            "décodeur",
            "ошибка",
            "x1",
            "CVE",
        ];
        for n in [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 66, 67, 130, 131, 500] {
            let text: Vec<&str> = (0..n)
                .map(|_| vocab[rng.below(vocab.len() as u64) as usize])
                .collect();
            let text = text.join(if n % 2 == 0 { " " } else { ", " });
            let sh = shingles(&text);
            let expected = (sh.len() + SHINGLE > MIN_WORDS).then(|| signature_of(&sh));
            assert_eq!(signature(&text), expected, "{n} words");
        }
        let long = A.repeat(40);
        assert_eq!(signature(&long), Some(signature_of(&shingles(&long))));
    }

    #[test]
    fn bytes_round_trip() {
        let s = signature(A).unwrap();
        assert_eq!(from_bytes(&to_bytes(&s)), Some(s));
        assert_eq!(from_bytes(&[1, 2, 3]), None);
    }
}
