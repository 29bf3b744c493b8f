//! The main loop: one owner of the [`App`], fed by an input thread, the engine's event channel
//! and the replies to its requests. It drains everything pending, redraws at most `fps` times
//! a second while the engine is busy and at once after a key press.

use super::app::{App, Effect, Msg};
use super::keymap::Keymap;
use super::theme::Theme;
use super::ui;
use super::SessionInfo;
use crate::engine::types::{Command, EngineEvent, RecordFilter, SortBy};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};
use ratatui::backend::Backend;
use ratatui::Terminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How the session looks and behaves; built by the binary from config and flags.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    pub keymap: Keymap,
    pub theme: Theme,
    pub session: SessionInfo,
    pub fps: u32,
    pub table_refresh: Duration,
    pub export_dir: PathBuf,
    pub mouse: bool,
    /// How long to wait for the engine to confirm a clean stop before leaving anyway.
    pub stop_timeout: Duration,
}

impl Default for TuiOptions {
    fn default() -> Self {
        TuiOptions {
            keymap: Keymap::default_keymap(),
            theme: Theme::dark(),
            session: SessionInfo::default(),
            fps: 30,
            table_refresh: Duration::from_millis(250),
            export_dir: PathBuf::from("export"),
            mouse: false,
            stop_timeout: Duration::from_secs(15),
        }
    }
}

/// The app plus its connections to the engine. Carries out the app's effects.
pub struct Session {
    pub app: App,
    cmd_tx: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<EngineEvent>,
    events_open: bool,
    replies_tx: mpsc::UnboundedSender<Msg>,
    replies_rx: mpsc::UnboundedReceiver<Msg>,
    in_flight: usize,
    exit: bool,
}

impl Session {
    /// Must be called inside a tokio runtime: it spawns the task that forwards commands in order.
    pub fn new(
        app: App,
        commands: mpsc::Sender<Command>,
        events: mpsc::Receiver<EngineEvent>,
    ) -> Session {
        let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
        // One forwarder keeps commands in the order the app issued them (a label before the
        // query that must see it) while the UI never waits on a full engine queue.
        tokio::spawn(async move {
            while let Some(c) = cmd_rx.recv().await {
                if commands.send(c).await.is_err() {
                    break;
                }
            }
        });
        let (replies_tx, replies_rx) = mpsc::unbounded_channel();
        Session {
            app,
            cmd_tx,
            events,
            events_open: true,
            replies_tx,
            replies_rx,
            in_flight: 0,
            exit: false,
        }
    }

    /// Sends the session's first requests.
    pub fn start(&mut self) {
        let fx = self.app.start();
        self.apply(fx);
    }

    pub fn should_exit(&self) -> bool {
        self.exit
    }

    pub fn handle(&mut self, msg: Msg) {
        let fx = self.app.update(msg);
        self.apply(fx);
    }

    fn handle_reply(&mut self, msg: Msg) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.handle(msg);
    }

    fn apply(&mut self, fx: Vec<Effect>) {
        for e in fx {
            match e {
                Effect::Send(c) => {
                    let _ = self.cmd_tx.send(c);
                }
                Effect::Query {
                    gen,
                    filter,
                    sort,
                    offset,
                    limit,
                } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::Query {
                        filter,
                        sort,
                        offset,
                        limit,
                        reply,
                    });
                    self.await_reply(rx, move |page| Msg::Page { gen, page }, "query");
                }
                Effect::GetRecord { id } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::GetRecord {
                        id: id.clone(),
                        reply,
                    });
                    self.await_reply(rx, move |detail| Msg::Detail { id, detail }, "record");
                }
                Effect::Preview { gen, thresholds } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self
                        .cmd_tx
                        .send(Command::PreviewThresholds(thresholds, reply));
                    self.await_reply(rx, move |preview| Msg::Preview { gen, preview }, "preview");
                }
                Effect::Agreement {
                    tag,
                    gen,
                    thresholds,
                } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::Agreement { thresholds, reply });
                    self.await_reply(
                        rx,
                        move |value| Msg::Agreement { tag, gen, value },
                        "agreement",
                    );
                }
                Effect::Group { id } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::Group {
                        id: id.clone(),
                        reply,
                    });
                    self.await_reply(rx, move |view| Msg::Group { id, view }, "group");
                }
                Effect::HeadStatus => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::HeadStatus { reply });
                    self.await_reply(rx, Msg::HeadStatus, "head status");
                }
                Effect::Suggest => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::SuggestRules { reply });
                    self.await_reply(rx, Msg::Suggestions, "suggest");
                }
                Effect::PreviewRule { gen, rule } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::PreviewRule { rule, reply });
                    self.await_reply(
                        rx,
                        move |preview| Msg::RulePreview { gen, preview },
                        "rule preview",
                    );
                }
                Effect::AddRule { rule } => {
                    let (reply, rx) = oneshot::channel();
                    let _ = self.cmd_tx.send(Command::AddRule { rule, reply });
                    self.await_reply(rx, Msg::RuleAdded, "add rule");
                }
                Effect::Exit => self.exit = true,
            }
        }
    }

    fn await_reply<T: Send + 'static>(
        &mut self,
        rx: oneshot::Receiver<T>,
        wrap: impl FnOnce(T) -> Msg + Send + 'static,
        what: &'static str,
    ) {
        self.in_flight += 1;
        let tx = self.replies_tx.clone();
        tokio::spawn(async move {
            let msg = match rx.await {
                Ok(v) => wrap(v),
                Err(_) => Msg::ReplyLost(what),
            };
            let _ = tx.send(msg);
        });
    }

    /// Applies every engine event and reply already waiting, without blocking.
    /// Returns how many messages were handled.
    pub fn drain(&mut self) -> usize {
        self.drain_up_to(usize::MAX)
    }

    /// Like [`Session::drain`] but stops after `max` messages, so that an engine sending flat
    /// out cannot keep the loop from reading keys and drawing.
    pub fn drain_up_to(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            if let Ok(m) = self.replies_rx.try_recv() {
                self.handle_reply(m);
                n += 1;
                continue;
            }
            if self.events_open {
                match self.events.try_recv() {
                    Ok(ev) => {
                        self.handle(Msg::Engine(ev));
                        n += 1;
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        self.events_open = false;
                        self.handle(Msg::EngineClosed);
                        n += 1;
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
            }
            break;
        }
        n
    }

    /// Waits until the engine has handled every command sent so far, every request has been
    /// answered and every event it sent has been applied. For scripted sessions and tests: a
    /// barrier query goes through the same ordered channel, so its answer comes after them.
    pub async fn settle(&mut self) {
        for _ in 0..100 {
            let (reply, rx) = oneshot::channel();
            let barrier = Command::Query {
                filter: RecordFilter::default(),
                sort: SortBy::Arrival,
                offset: 0,
                limit: 0,
                reply,
            };
            if self.cmd_tx.send(barrier).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
            }
            while self.in_flight > 0 {
                match tokio::time::timeout(Duration::from_secs(5), self.replies_rx.recv()).await {
                    Ok(Some(m)) => self.handle_reply(m),
                    _ => break,
                }
            }
            if self.drain() == 0 && self.in_flight == 0 {
                return;
            }
        }
    }
}

/// Maps a terminal event to app messages (key presses only; mouse wheel when enabled).
pub fn input_to_msg(ev: Event, mouse: bool) -> Option<Msg> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => Some(Msg::Key(k)),
        Event::Resize(width, height) => Some(Msg::Resize { width, height }),
        Event::Mouse(m) if mouse => {
            let code = match m.kind {
                MouseEventKind::ScrollDown => KeyCode::Down,
                MouseEventKind::ScrollUp => KeyCode::Up,
                _ => return None,
            };
            Some(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
        }
        _ => None,
    }
}

/// Messages applied per loop turn before input and drawing get their turn again.
const DRAIN_BATCH: usize = 1024;

enum Next {
    Input(Option<Event>),
    Reply(Option<Msg>),
    Engine(Option<EngineEvent>),
    Tick,
    Interrupt,
}

/// The main loop over any ratatui backend and any source of terminal events.
pub async fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    session: &mut Session,
    mut input: mpsc::UnboundedReceiver<Event>,
    opts: &TuiOptions,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let frame = Duration::from_secs_f64(1.0 / f64::from(opts.fps.clamp(1, 120)));
    let mut tick = tokio::time::interval(frame);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let size = terminal.size()?;
    session.handle(Msg::Resize {
        width: size.width,
        height: size.height,
    });
    session.start();
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    let mut stopping_since: Option<Instant> = None;
    let mut input_open = true;
    // Fault injection for the end-to-end test of the panic path (the real hook, the real
    // terminal): `CYBERFILTER_TUI_FAULT=panic` panics right after the first frame.
    let inject_panic = std::env::var("CYBERFILTER_TUI_FAULT").as_deref() == Ok("panic");
    loop {
        let due = last_draw.is_none_or(|t| t.elapsed() >= frame);
        if dirty && due {
            terminal.draw(|f| ui::draw(&session.app, f))?;
            last_draw = Some(Instant::now());
            dirty = false;
            if inject_panic {
                panic!("injected fault (CYBERFILTER_TUI_FAULT=panic)");
            }
        }
        if session.should_exit() {
            return Ok(());
        }
        if session.app.engine == super::app::EngineState::Stopping {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() > opts.stop_timeout {
                tracing::warn!(
                    "the engine did not confirm its stop within {:?}; leaving",
                    opts.stop_timeout
                );
                return Ok(());
            }
        }
        let next = tokio::select! {
            biased;
            ev = input.recv(), if input_open => Next::Input(ev),
            _ = tokio::signal::ctrl_c() => Next::Interrupt,
            m = session.replies_rx.recv() => Next::Reply(m),
            ev = session.events.recv(), if session.events_open => Next::Engine(ev),
            _ = tick.tick() => Next::Tick,
        };
        match next {
            Next::Input(None) => input_open = false,
            Next::Input(Some(ev)) => {
                let is_key = matches!(ev, Event::Key(_));
                if let Some(msg) = input_to_msg(ev, opts.mouse) {
                    session.handle(msg);
                }
                // Apply whatever else is already waiting, then show the key's effect now.
                while let Ok(ev) = input.try_recv() {
                    if let Some(msg) = input_to_msg(ev, opts.mouse) {
                        session.handle(msg);
                    }
                }
                session.drain_up_to(DRAIN_BATCH);
                dirty = true;
                if is_key {
                    last_draw = None;
                }
            }
            Next::Interrupt => {
                session.handle(Msg::Key(KeyEvent::new(
                    KeyCode::Char('c'),
                    KeyModifiers::CONTROL,
                )));
                dirty = true;
            }
            Next::Reply(Some(m)) => {
                session.handle_reply(m);
                session.drain_up_to(DRAIN_BATCH);
                dirty = true;
            }
            Next::Reply(None) => {}
            Next::Engine(ev) => {
                match ev {
                    Some(ev) => session.handle(Msg::Engine(ev)),
                    None => {
                        session.events_open = false;
                        session.handle(Msg::EngineClosed);
                    }
                }
                session.drain_up_to(DRAIN_BATCH);
                dirty = true;
            }
            Next::Tick => {
                session.handle(Msg::Tick(start.elapsed()));
                // A status message may have expired.
                dirty = dirty || session.app.status.is_some();
            }
        }
    }
}

/// Puts the terminal back: raw mode off, main screen, cursor shown. Safe to call twice.
pub fn restore_terminal() {
    // Once only: the panic hook and the guard both call this, and leaving the alternate
    // screen a second time moves the cursor back over what the panic printed.
    if !TERMINAL_TAKEN.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    use crossterm::{cursor, event, execute, terminal};
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        event::DisableMouseCapture,
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

/// Raw mode and the alternate screen are on (and must be undone once).
static TERMINAL_TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Restores the terminal before the default hook prints the panic, so the message is readable
/// and the shell is usable.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        tracing::error!("panic: {info}");
        previous(info);
    }));
}

struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events on a plain thread (crossterm's reader blocks) until the loop is gone.
fn spawn_input_thread() -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || loop {
            match crossterm::event::poll(Duration::from_millis(100)) {
                Ok(true) => match crossterm::event::read() {
                    Ok(ev) => {
                        if tx.send(ev).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::error!("terminal input failed: {e}");
                        break;
                    }
                },
                Ok(false) => {
                    if tx.is_closed() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!("terminal input failed: {e}");
                    break;
                }
            }
        })
        .expect("spawn the input thread");
    rx
}

/// Runs the workbench in the real terminal against an engine's channels until the curator
/// quits and the engine has stopped (or its stop timed out). The terminal is restored on
/// every way out: normal return, error, panic.
pub async fn run_tui(
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<EngineEvent>,
    opts: TuiOptions,
) -> anyhow::Result<SessionEnd> {
    use crossterm::{event, execute, terminal};
    install_panic_hook();
    terminal::enable_raw_mode()?;
    TERMINAL_TAKEN.store(true, std::sync::atomic::Ordering::SeqCst);
    let _guard = TerminalGuard;
    let mut stdout = std::io::stdout();
    execute!(stdout, terminal::EnterAlternateScreen)?;
    if opts.mouse {
        execute!(stdout, event::EnableMouseCapture)?;
    }
    let mut terminal = Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    let mut app = App::new(
        opts.keymap.clone(),
        opts.theme.clone(),
        opts.session.clone(),
    );
    app.refresh_every = opts.table_refresh;
    app.export_dir = opts.export_dir.clone();
    let mut session = Session::new(app, commands, events);
    let input = spawn_input_thread();
    let result = run_loop(&mut terminal, &mut session, input, &opts).await;
    let _ = terminal.show_cursor();
    result.map(|()| SessionEnd {
        stats: session.app.stats.clone(),
        engine: session.app.engine,
        labels: session.app.labels_this_session,
    })
}

/// How a session ended, for the summary printed after the terminal is restored.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    pub stats: crate::engine::types::StatsSnapshot,
    pub engine: super::app::EngineState,
    pub labels: u64,
}
