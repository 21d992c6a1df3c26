//! Bounds on what clients can make a `Server` hold: the size and the time of
//! a request head, the time an answer may wait for its client, and the
//! number of connections (and so of queued requests) handled at once. All of
//! the fork's limits are the constants here.
//!
//! Every connection a `Server` handles holds a [`Slot`]. At most
//! [`MAX_CONNECTIONS`] are handed out; when all are taken, the accept thread
//! makes room by closing the oldest connection whose thread waits for the
//! client to send the rest of a request head it started, or (after
//! [`IDLE_GRACE`]) to send anything at all, so that slow or idle clients
//! cannot keep a new client out. Clients send a head in one write, which one
//! read takes whole (the read buffer holds [`MAX_HEAD_BYTES`]), so a thread
//! waits for the rest of a head only for a client that holds it back.
//! Connections whose head is being parsed, or whose request is being
//! answered, are never closed this way; when all slots are theirs, the
//! accept thread waits for one to end.

use std::collections::BTreeMap;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// Request line and headers together, line ends included.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Time for a request head to arrive, counted from when the connection may
/// send it: its accept, or the end of its previous request.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections handled at once by one `Server`; also its most threads.
/// A program listening on both 127.0.0.1 and ::1 has two servers. Each
/// connection has at most one request in flight (its next head is read once
/// the answer is flushed), so this also bounds the requests waiting in the
/// server's queue.
pub(crate) const MAX_CONNECTIONS: usize = 24;

/// Time for one write of an answer to make progress; a client that does not
/// read its answers for this long has its connection closed.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Request body left unread by the application that is skipped so the
/// connection can carry another request; with more, the connection is closed.
pub(crate) const MAX_SKIPPED_BODY: usize = 1024 * 1024;

/// How long a connection must have been waiting for the first byte of a head
/// before it may be closed to make room: its client may be about to send.
pub(crate) const IDLE_GRACE: Duration = Duration::from_secs(1);

/// How often a waiting accept thread looks whether the server is closing.
const POLL: Duration = Duration::from_millis(100);

/// The connections of one `Server`.
pub(crate) struct Limiter {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// A slot was freed, or a waiting connection became one to close.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    open: usize,
    next_key: u64,
    /// Connections waiting for a request head, by when they began to wait.
    heads: BTreeMap<u64, Head>,
}

struct Head {
    /// Since when its thread waits for the client to send more, if it does.
    waiting_since: Option<Instant>,
    /// Some of the head (or of a body to skip before it) has arrived.
    started: bool,
    socket: Arc<Connection>,
}

impl Head {
    /// When it may be closed to make room, if its thread waits for the client.
    fn closable_at(&self) -> Option<Instant> {
        let grace = if self.started { Duration::ZERO } else { IDLE_GRACE };
        self.waiting_since.map(|since| since + grace)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Limiter {
    pub(crate) fn new() -> Limiter {
        Limiter {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
            }),
        }
    }

    /// A slot for a new connection on `socket`, making room when all are
    /// taken. None if `closing` was set while waiting for room.
    pub(crate) fn admit(&self, socket: Arc<Connection>, closing: &AtomicBool) -> Option<Slot> {
        let mut state = self.shared.lock();
        while state.open >= MAX_CONNECTIONS {
            if closing.load(Ordering::Relaxed) {
                return None;
            }
            let now = Instant::now();
            let oldest = state
                .heads
                .iter()
                .find(|(_, head)| head.closable_at().is_some_and(|at| at <= now))
                .map(|(&key, _)| key);
            if let Some(head) = oldest.and_then(|key| state.heads.remove(&key)) {
                // Its thread sees the end of the stream and frees the slot;
                // admit the new connection meanwhile (it waits for a thread).
                let _ = head.socket.shutdown(Shutdown::Both);
                break;
            }
            let wait = state
                .heads
                .values()
                .filter_map(Head::closable_at)
                .min()
                .map_or(POLL, |at| at.saturating_duration_since(now).min(POLL));
            state = self
                .shared
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.open += 1;
        Some(Slot {
            shared: self.shared.clone(),
            socket,
            head: None,
        })
    }
}

/// One connection's place among those a `Server` handles; freed on drop.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    socket: Arc<Connection>,
    head: Option<u64>,
}

impl Slot {
    /// The socket, to set timeouts on.
    pub(crate) fn socket(&self) -> &Connection {
        &self.socket
    }

    /// The connection waits for a request head: it may be closed to make room.
    pub(crate) fn head_begins(&mut self) {
        let mut state = self.shared.lock();
        if let Some(key) = self.head.take() {
            state.heads.remove(&key);
        }
        let key = state.next_key;
        state.next_key += 1;
        state.heads.insert(
            key,
            Head {
                waiting_since: None,
                started: false,
                socket: self.socket.clone(),
            },
        );
        self.head = Some(key);
    }

    /// The thread is about to wait for the client to send (more of) the
    /// head; `started` if some of it came already.
    pub(crate) fn waits_for_client(&mut self, started: bool) {
        if let Some(key) = self.head {
            if let Some(head) = self.shared.lock().heads.get_mut(&key) {
                head.waiting_since = Some(Instant::now());
                head.started = started;
            }
            if started {
                // soon closable: wake an accept thread waiting for room
                self.shared.changed.notify_all();
            }
        }
    }

    /// The client sent something (or the read failed): the thread no longer waits.
    pub(crate) fn client_sent(&mut self) {
        if let Some(key) = self.head {
            if let Some(head) = self.shared.lock().heads.get_mut(&key) {
                head.waiting_since = None;
            }
        }
    }

    /// The head is complete (or failed): the connection is no longer one to close.
    pub(crate) fn head_ends(&mut self) {
        if let Some(key) = self.head.take() {
            self.shared.lock().heads.remove(&key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(key) = self.head.take() {
            state.heads.remove(&key);
        }
        state.open -= 1;
        drop(state);
        self.shared.changed.notify_all();
    }
}
