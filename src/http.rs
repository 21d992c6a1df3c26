//! The one loopback HTTP server behind the login callback and `serve`:
//! binding to loopback only, and building answers. Both servers face every
//! local process (and, through the browser, web pages), so the request
//! limits — head size, head read time, connections handled at once — live
//! in the server itself, where no request can get past them: tiny_http,
//! patched in `vendor/tiny_http/` (its `PATCHES.md` lists each limit).

use std::io::{self, Cursor};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use tiny_http::{Header, Response, Server};

/// A server listening on one loopback address.
pub struct Listener {
    pub server: Server,
    pub addr: SocketAddr,
}

/// Why an address could not be bound.
#[derive(Debug)]
pub struct BindError {
    pub addr: SocketAddr,
    pub error: io::Error,
}

impl BindError {
    /// Whether another program holds the port.
    pub fn in_use(&self) -> bool {
        self.error.kind() == io::ErrorKind::AddrInUse
    }

    /// `cannot listen on ADDR: …`, naming the program that holds the port
    /// when the system tells it.
    pub fn describe(&self) -> String {
        let owner = if self.in_use() {
            crate::platform::port_owner(self.addr.port())
                .map(|(pid, name)| format!(" (held by `{name}`, process {pid})"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        format!("cannot listen on {}: {}{owner}", self.addr, self.error)
    }
}

/// Listen on `addr` (a loopback address).
pub fn listen(addr: SocketAddr) -> io::Result<Listener> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let server = Server::from_listener(listener, None).map_err(io::Error::other)?;
    Ok(Listener { server, addr })
}

/// Listen on `port` at 127.0.0.1 and ::1 (browsers resolve `localhost` to
/// either), or only the one of them asked for. Port 0: the system picks
/// one, the same on both. ::1 is skipped where the host has no IPv6, but a
/// port another program holds on ::1 is an error: it would receive what
/// clients resolving `localhost` to ::1 send.
pub fn listen_loopback(port: u16, v4: bool, v6: bool) -> Result<Vec<Listener>, BindError> {
    let bind = |addr: SocketAddr| listen(addr).map_err(|error| BindError { addr, error });
    let mut listeners = Vec::new();
    let mut port = port;
    if v4 {
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        port = listener.addr.port();
        listeners.push(listener);
    }
    if v6 {
        match bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))) {
            Ok(listener) => listeners.push(listener),
            Err(e) if v4 && e.error.kind() != io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

/// An answer with `body` of `content_type`, never cached.
pub fn response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Cursor<Vec<u8>>> {
    let mut response = Response::from_data(body).with_status_code(status);
    add_header(&mut response, "Content-Type", content_type);
    add_header(&mut response, "Cache-Control", "no-store");
    add_header(&mut response, "X-Content-Type-Options", "nosniff");
    response
}

/// Add a header; names and values here are constants or our own JSON-free text.
pub fn add_header(response: &mut Response<Cursor<Vec<u8>>>, name: &str, value: &str) {
    if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        response.add_header(header);
    }
}
