//! The listener's front end: one thread, one epoll set, every connection until its
//! request head has arrived (TLS handshake included); only then does a worker see it.
//!
//! Why: a worker that waits for a head can be held for the whole `timeout` by a client
//! that sends nothing (slowloris); a few such clients would starve Prometheus. Here a
//! waiting connection costs a socket and a small buffer. At most `max_connections` wait at
//! once. When the table is full, a new connection evicts the oldest waiting one if that
//! one has had [`GRACE`] to send its head, so an attacker who holds every slot cannot
//! keep a scraper out (a scraper's head arrives within a round trip and leaves the table
//! at once); if even the oldest is younger (a burst of real clients), new connections
//! wait in the kernel's backlog until slots free up. Every head must be complete within
//! `timeout` of the accept. Complete requests queue for the workers (at most
//! `max_connections` of them); beyond that a request gets an immediate 503 from here.

use super::request::head_end;
use super::tls::{self, NoSigpipe};
use super::{Job, Shared};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConnection;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a waiting connection is safe from eviction: enough for any real client to
/// send a request head after connecting (one round trip), far less than `timeout`.
pub(super) const GRACE: Duration = Duration::from_millis(250);

pub(super) const LISTENER: Token = Token(usize::MAX - 1);
pub(super) const WAKER: Token = Token(usize::MAX - 2);

/// Why the front end closed a connection without handing it to a worker (the
/// `reason` label of `qprom_http_dropped_connections_total`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Dropped {
    /// The table was full and this was the oldest connection still sending its head.
    Evicted,
    /// No complete head within `timeout` of the accept.
    Timeout,
    /// Complete, but every worker busy and the queue full: answered 503 from here.
    QueueFull,
    /// The TLS handshake or record layer failed (plain HTTP on the TLS port included).
    Tls,
}

impl Dropped {
    pub(super) const ALL: [Dropped; 4] = [Dropped::Evicted, Dropped::Timeout, Dropped::QueueFull, Dropped::Tls];
    pub(super) fn label(self) -> &'static str {
        match self {
            Dropped::Evicted => "evicted",
            Dropped::Timeout => "timeout",
            Dropped::QueueFull => "queue_full",
            Dropped::Tls => "tls",
        }
    }
}

struct Conn {
    stream: TcpStream,
    tls: Option<Box<ServerConnection>>,
    /// The head so far (plaintext); grows up to `max_request_bytes`.
    buf: Vec<u8>,
    scanned: usize,
    accepted: Instant,
    seq: u64,
    /// Registered for WRITABLE too: a handshake flight did not fit the send buffer.
    writable: bool,
    /// Nothing read yet (a TLS port checks the first bytes for plain HTTP).
    fresh: bool,
}

enum Next {
    Wait,
    /// The head is `buf[..n]`.
    Ready(usize),
    /// `max_request_bytes` read without the end of a head: 431 from a worker.
    TooLarge,
    /// Peer gone, I/O error; `Some` = counted as dropped.
    Close(Option<Dropped>),
}

struct Front<'a> {
    sh: &'a Shared,
    poll: &'a mut Poll,
    listener: &'a TcpListener,
    /// Kept by the caller across a restart after a panic: TLS must never lapse.
    tls: &'a mut Option<tls::Reloading>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// (seq, slot) in accept order = deadline order (one timeout for all); entries whose
    /// connection left the table are skipped when met.
    order: VecDeque<(u64, usize)>,
    seq: u64,
    /// When to try accepting again: after EMFILE and the like, or when the table is full
    /// of connections still within their grace.
    accept_retry: Option<Instant>,
    /// Connections may be waiting in the backlog that no event will announce again
    /// (epoll is edge-triggered): accept as soon as a slot frees.
    backlog: bool,
    scratch: Box<[u8; 16 * 1024]>,
}

/// Runs until `stop`; every waiting connection closes when it returns (or unwinds).
pub(super) fn run(sh: &Shared, poll: &mut Poll, listener: &TcpListener, tls: &mut Option<tls::Reloading>) {
    let mut f = Front {
        sh,
        poll,
        listener,
        tls,
        conns: Vec::new(),
        free: Vec::new(),
        order: VecDeque::new(),
        seq: 0,
        accept_retry: None,
        backlog: false,
        scratch: Box::new([0; 16 * 1024]),
    };
    let mut events = Events::with_capacity(256);
    loop {
        let timeout = f.next_timeout();
        if let Err(e) = f.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                std::thread::sleep(Duration::from_millis(20)); // epoll_wait failing: do not spin
            }
            continue;
        }
        if f.sh.stop.load(SeqCst) {
            return;
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => f.accept_all(),
                WAKER => {}
                Token(i) => f.drive(i),
            }
        }
        f.expire();
        let retry = f.accept_retry.is_some_and(|t| t <= Instant::now());
        if retry || (f.backlog && f.open() < f.sh.cfg.max_connections) {
            f.accept_retry = None;
            f.accept_all();
        }
    }
}

impl Front<'_> {
    /// Connections in the table (every slot not on the free list).
    fn open(&self) -> usize {
        self.conns.len() - self.free.len()
    }

    fn timeout(&self) -> Duration {
        self.sh.cfg.timeout
    }

    fn next_timeout(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let head = loop {
            match self.order.front() {
                None => break None,
                Some(&(seq, i)) => match &self.conns[i] {
                    Some(c) if c.seq == seq => break Some(c.accepted + self.timeout()),
                    _ => {
                        self.order.pop_front();
                    }
                },
            }
        };
        let t = match (head, self.accept_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // +1 ms: epoll's millisecond timeout rounds down, and waking early just loops.
        t.map(|t| t.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn accept_all(&mut self) {
        self.backlog = false;
        loop {
            // Full: accept only if there is a connection to evict for it, and evict only
            // once a newcomer is really there (the backlog cannot be peeked).
            let full = self.open() >= self.sh.cfg.max_connections;
            if full && !self.oldest_is_ripe() {
                self.backlog = true;
                return;
            }
            match self.listener.accept() {
                Ok((s, _)) => {
                    if full {
                        self.evict_oldest();
                    }
                    self.admit(s)
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                    // EMFILE, ENFILE, ENOBUFS: the pending connections stay in the backlog;
                    // the event will not fire again for them, so come back on a timer.
                    _ => {
                        self.accept_retry = Some(Instant::now() + Duration::from_millis(20));
                        return;
                    }
                },
            }
        }
    }

    fn admit(&mut self, s: TcpStream) {
        if s.set_nonblocking(true).is_err() {
            return;
        }
        let tls = match self.tls.as_mut() {
            None => None,
            Some(r) => {
                let (cfg, reload) = r.current();
                self.sh.m.tls_reload(reload);
                match ServerConnection::new(cfg) {
                    Ok(c) => Some(Box::new(c)),
                    Err(_) => return self.sh.m.dropped(Dropped::Tls),
                }
            }
        };
        let i = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if self.poll.registry().register(&mut SourceFd(&s.as_raw_fd()), Token(i), Interest::READABLE).is_err() {
            self.free.push(i);
            return;
        }
        self.seq += 1;
        let now = Instant::now();
        self.conns[i] = Some(Conn {
            stream: s,
            tls,
            buf: Vec::new(),
            scanned: 0,
            accepted: now,
            seq: self.seq,
            writable: false,
            fresh: true,
        });
        self.order.push_back((self.seq, i));
        if self.order.len() > 4 * self.sh.cfg.max_connections + 64 {
            // Entries of connections handed off long ago, kept behind a slow one at the front.
            let conns = &self.conns;
            self.order.retain(|&(seq, i)| conns[i].as_ref().is_some_and(|c| c.seq == seq));
        }
        // Data may already be there (edge-triggered: no event for what arrived before).
        self.drive(i);
    }

    /// Whether the oldest waiting connection has had its grace; if not, sets
    /// `accept_retry` to when it will have.
    fn oldest_is_ripe(&mut self) -> bool {
        while let Some(&(seq, i)) = self.order.front() {
            match &self.conns[i] {
                Some(c) if c.seq == seq => {
                    let ripe = c.accepted + GRACE;
                    if ripe > Instant::now() {
                        self.accept_retry = Some(self.accept_retry.map_or(ripe, |t| t.min(ripe)));
                        return false;
                    }
                    return true;
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        false // full, yet nothing waiting: cannot happen (open() counts table entries)
    }

    /// Closes the oldest waiting connection (after `oldest_is_ripe` said it may).
    fn evict_oldest(&mut self) {
        if let Some((_, i)) = self.order.pop_front() {
            self.close(i, Some(Dropped::Evicted));
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        while let Some(&(seq, i)) = self.order.front() {
            match &self.conns[i] {
                Some(c) if c.seq == seq => {
                    if c.accepted + self.timeout() > now {
                        return;
                    }
                    self.order.pop_front();
                    self.close(i, Some(Dropped::Timeout));
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
    }

    fn close(&mut self, i: usize, why: Option<Dropped>) {
        if let Some(c) = self.conns[i].take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&c.stream.as_raw_fd()));
            self.free.push(i);
            if let Some(w) = why {
                self.sh.m.dropped(w);
            }
        }
    }

    fn drive(&mut self, i: usize) {
        let max = self.sh.cfg.max_request_bytes;
        let Some(c) = self.conns[i].as_mut() else { return };
        let next = match c.tls.is_some() {
            false => read_plain(c, &mut self.scratch[..], max),
            true => read_tls(c, max),
        };
        match next {
            Next::Wait => {
                let want_w = c.tls.as_ref().is_some_and(|t| t.wants_write());
                if want_w != c.writable {
                    let interest = if want_w { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                    let fd = c.stream.as_raw_fd();
                    c.writable = want_w;
                    if self.poll.registry().reregister(&mut SourceFd(&fd), Token(i), interest).is_err() {
                        self.close(i, None);
                    }
                }
            }
            Next::Close(why) => self.close(i, why),
            Next::Ready(n) => self.hand_off(i, n, false),
            Next::TooLarge => self.hand_off(i, 0, true),
        }
    }

    fn hand_off(&mut self, i: usize, len: usize, too_large: bool) {
        let Some(c) = self.conns[i].take() else { return };
        let _ = self.poll.registry().deregister(&mut SourceFd(&c.stream.as_raw_fd()));
        self.free.push(i);
        if c.stream.set_nonblocking(false).is_err() {
            return;
        }
        let job = Job { stream: Arc::new(c.stream), tls: c.tls, head: c.buf, len, too_large };
        let mut q = self.sh.queue.lock();
        if q.len() < self.sh.cfg.max_connections {
            q.push_back(job);
            self.sh.ready.notify_one();
            return;
        }
        drop(q);
        // Every worker busy and a queue of complete requests: say so now rather than let
        // the client wait out its timeout. Best effort, and short enough for any send buffer.
        let Job { stream, tls, .. } = job;
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let deadline = Instant::now() + Duration::from_millis(100);
        let _ = match tls {
            None => (&*stream).write_all(super::QUEUE_FULL),
            Some(mut t) => tls::send(&mut t, &stream, super::QUEUE_FULL, deadline),
        };
        let _ = stream.shutdown(Shutdown::Write);
        self.sh.m.dropped(Dropped::QueueFull);
    }
}

/// Reads what a plain connection has until the head is complete, the peer blocks, or
/// the buffer is full.
fn read_plain(c: &mut Conn, scratch: &mut [u8], max: usize) -> Next {
    loop {
        let want = (max - c.buf.len()).min(scratch.len());
        if want == 0 {
            return Next::TooLarge;
        }
        match (&c.stream).read(&mut scratch[..want]) {
            Ok(0) => return Next::Close(None),
            Ok(n) => {
                c.buf.extend_from_slice(&scratch[..n]);
                if let Some(end) = head_end(&c.buf, c.scanned, c.buf.len()) {
                    return Next::Ready(end);
                }
                c.scanned = c.buf.len().saturating_sub(2); // a terminator may straddle reads
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close(None),
        }
    }
}

/// Moves a TLS connection on: queued handshake records out, records in, plaintext into
/// the head buffer.
fn read_tls(c: &mut Conn, max: usize) -> Next {
    if c.fresh {
        let mut first = [0u8; 8];
        match c.stream.peek(&mut first) {
            Ok(0) => return Next::Close(None),
            Ok(n) => {
                c.fresh = false;
                if tls::looks_like_http(&first[..n]) {
                    answer_plain_on_tls(&c.stream);
                    return Next::Close(Some(Dropped::Tls));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(_) => return Next::Close(None),
        }
    }
    let Conn { stream, tls, buf, scanned, .. } = c;
    let Some(t) = tls.as_mut() else { return Next::Close(None) };
    loop {
        // Out first: the handshake alternates, and a client waits for our flight.
        while t.wants_write() {
            match t.write_tls(&mut NoSigpipe(stream)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close(None),
            }
        }
        match t.read_tls(&mut &*stream) {
            Ok(0) => return Next::Close(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Next::Close(None),
        }
        if t.process_new_packets().is_err() {
            // The alert rustls queued tells the client why; then close.
            while t.wants_write() {
                if t.write_tls(&mut NoSigpipe(stream)).is_err() {
                    break;
                }
            }
            return Next::Close(Some(Dropped::Tls));
        }
        loop {
            let room = max - buf.len();
            if room == 0 {
                return Next::TooLarge;
            }
            let at = buf.len();
            buf.resize(at + room.min(4096), 0);
            match t.reader().read(&mut buf[at..]) {
                Ok(n) => {
                    buf.truncate(at + n);
                    if n == 0 {
                        return Next::Close(None); // close_notify before a whole head
                    }
                    if let Some(end) = head_end(buf, *scanned, buf.len()) {
                        return Next::Ready(end);
                    }
                    *scanned = buf.len().saturating_sub(2);
                }
                Err(e) => {
                    buf.truncate(at);
                    if e.kind() == io::ErrorKind::WouldBlock {
                        break; // no more plaintext yet
                    }
                    return Next::Close(None);
                }
            }
        }
    }
}

/// A plain request on the TLS port: read what it sent (closing with unread data would
/// reset the connection and lose the answer), answer 400 in plain text, close.
fn answer_plain_on_tls(s: &TcpStream) {
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        match (&*s).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = (&*s).write(tls::PLAIN_ON_TLS);
    let _ = s.shutdown(Shutdown::Write);
}
