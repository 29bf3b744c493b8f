//! The real main loop (`run_loop`) on a recording backend, against an engine that sends
//! events flat out: a key press must reach the screen within 50 ms, and `q` must stop the
//! engine and leave the loop.

mod common;

use common::record_row;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use cyberfilter::engine::types::*;
use cyberfilter::tui::runtime::run_loop;
use cyberfilter::tui::{App, Session, SessionInfo, TuiOptions};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A TestBackend that notes when each frame was flushed and whether it showed "FROZEN".
struct Recording {
    inner: TestBackend,
    frames: Arc<Mutex<Vec<(Instant, bool)>>>,
}

impl Backend for Recording {
    fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(&mut self, content: I) -> io::Result<()> {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<Position> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> io::Result<()> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, t: ClearType) -> io::Result<()> {
        self.inner.clear_region(t)
    }
    fn size(&self) -> io::Result<Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> io::Result<WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        let frozen = self
            .inner
            .buffer()
            .content()
            .windows(6)
            .any(|w| w.iter().map(|c| c.symbol()).collect::<String>() == "FROZEN");
        self.frames.lock().unwrap().push((Instant::now(), frozen));
        self.inner.flush()
    }
}

fn row(i: u64) -> RecordRow {
    RecordRow {
        score: (i % 9) as f32,
        ..record_row(i as i64, format!("CVE-2024-{i:06}"))
    }
}

/// An engine that emits verdict chunks and stats as fast as the channel takes them, answers
/// queries, and stops on `Stop`.
fn flooding_engine(sent: Arc<AtomicU64>) -> (mpsc::Sender<Command>, mpsc::Receiver<EngineEvent>) {
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let (ev_tx, ev_rx) = mpsc::channel::<EngineEvent>(256);
    tokio::spawn(async move {
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                c = cmd_rx.recv() => match c {
                    Some(Command::Query { offset, limit, reply, .. }) => {
                        let _ = reply.send(RecordPage { rows: (offset..(offset + limit).min(n)).map(row).collect(), total: n });
                    }
                    Some(Command::Agreement { reply, .. }) => { let _ = reply.send(LabelAgreement::default()); }
                    Some(Command::Stop) | None => {
                        let _ = ev_tx.send(EngineEvent::Finished(StatsSnapshot { records_read: n, ..Default::default() })).await;
                        break;
                    }
                    Some(_) => {}
                },
                permit = ev_tx.reserve() => {
                    let Ok(permit) = permit else { break };
                    if n % 4096 == 0 {
                        permit.send(EngineEvent::Stats(StatsSnapshot { records_read: n, records_per_sec: 1e5, ..Default::default() }));
                    } else {
                        permit.send(EngineEvent::Verdicts((n..n + 64).map(row).collect()));
                        n += 64;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    // Let the command arm in sometimes, as a real engine's tasks would.
                    if n % 1024 == 0 { tokio::task::yield_now().await; }
                }
            }
        }
    });
    (cmd_tx, ev_rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_reaches_the_screen_quickly_while_the_engine_floods_and_q_quits() {
    let sent = Arc::new(AtomicU64::new(0));
    let (commands, events) = flooding_engine(sent.clone());
    let frames = Arc::new(Mutex::new(Vec::new()));
    let backend = Recording {
        inner: TestBackend::new(200, 60),
        frames: frames.clone(),
    };
    let opts = TuiOptions::default();
    let (input_tx, input_rx) = mpsc::unbounded_channel::<Event>();
    let ui = tokio::spawn(async move {
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        let app = App::new(
            opts.keymap.clone(),
            opts.theme.clone(),
            SessionInfo::default(),
        );
        let mut session = Session::new(app, commands, events);
        run_loop(&mut terminal, &mut session, input_rx, &opts).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::new();
    let mut frozen = false;
    for _ in 0..6 {
        let pressed = Instant::now();
        input_tx
            .send(Event::Key(KeyEvent::new(
                KeyCode::Char('f'),
                KeyModifiers::NONE,
            )))
            .unwrap();
        frozen = !frozen;
        let deadline = pressed + Duration::from_secs(2);
        let seen = loop {
            let hit = frames
                .lock()
                .unwrap()
                .iter()
                .find(|(t, f)| *t >= pressed && *f == frozen)
                .map(|(t, _)| *t);
            if let Some(t) = hit {
                break t;
            }
            assert!(
                Instant::now() < deadline,
                "the key never reached the screen"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(seen - pressed);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let events_handled = sent.load(Ordering::Relaxed);
    let frame_count = frames.lock().unwrap().len();
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "key→screen latencies {latencies:?}; {events_handled} engine events and {frame_count} frames in ~1.5 s"
    );
    assert!(
        median < Duration::from_millis(50),
        "median key→screen {median:?}"
    );
    assert!(
        events_handled > 1000,
        "the UI did not keep up with the engine: {events_handled} events"
    );
    input_tx
        .send(Event::Key(KeyEvent::new(
            KeyCode::Char('q'),
            KeyModifiers::NONE,
        )))
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(5), ui).await;
    assert!(
        matches!(done, Ok(Ok(Ok(())))),
        "the loop did not stop cleanly: {done:?}"
    );
}
