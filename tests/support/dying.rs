//! A pod that dies mid-run: a relay in front of a real server, standing for the pod's port, that
//! resets every connection and stops listening the moment a client sends a given text (a statement
//! of the check it should die at), as a container killed under its clients does. Or, holding instead
//! ([`Dying::holding`]), stops relaying at that moment and leaves the connection as it is, for the
//! test to break something else meanwhile (the kubelet, the API server's stream).
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

/// The relay: its address (where the pod's port is forwarded), and whether it has died yet.
pub struct Dying {
    pub addr: SocketAddr,
    died: Arc<AtomicBool>,
}

impl Dying {
    /// Relays to `to` until a client sends `trigger`, then dies.
    pub fn start(to: SocketAddr, trigger: &str) -> Dying {
        Dying::new(to, trigger, true)
    }

    /// Relays to `to` until a client sends `trigger`, then holds: what was sent stays unanswered
    /// and every connection stays open.
    pub fn holding(to: SocketAddr, trigger: &str) -> Dying {
        Dying::new(to, trigger, false)
    }

    fn new(to: SocketAddr, trigger: &str, reset: bool) -> Dying {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let died = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let trigger = trigger.as_bytes().to_vec();
        let d = died.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                if d.load(Ordering::SeqCst) {
                    // Dead: nothing listens any more.
                    break;
                }
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                if let Ok(mut o) = open.lock() {
                    o.extend(client.try_clone().ok());
                    o.extend(server.try_clone().ok());
                }
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let (d, open, trigger) = (d.clone(), open.clone(), trigger.clone());
                thread::spawn(move || pipe(c2, s2, Some((&trigger, &d, &open, reset))));
                thread::spawn(move || pipe(server, client, None));
            }
        });
        Dying { addr, died }
    }

    pub fn died(&self) -> bool {
        self.died.load(Ordering::SeqCst)
    }
}

type Death<'a> = (&'a [u8], &'a AtomicBool, &'a Mutex<Vec<TcpStream>>, bool);

/// Copies `from` to `to`; with `death`, watching for its trigger, upon which the relay is marked
/// dead and every connection of it shut down (or, holding, left as it is).
fn pipe(mut from: TcpStream, mut to: TcpStream, death: Option<Death>) {
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((trigger, died, open, reset)) = death {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(trigger.len()).any(|w| w == trigger) {
                died.store(true, Ordering::SeqCst);
                if !reset {
                    // Held: the sockets stay open, unread, until the test ends.
                    std::thread::park();
                    return;
                }
                if let Ok(o) = open.lock() {
                    for s in o.iter() {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
                // Wake the accept loop so that it sees the death and stops listening.
                if let Ok(me) = from.local_addr() {
                    let _ = TcpStream::connect(me);
                }
                break;
            }
            // Keep only what a trigger split across reads could need.
            let keep = seen.len().saturating_sub(trigger.len());
            seen.drain(..keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
