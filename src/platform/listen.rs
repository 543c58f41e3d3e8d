//! The platform's socket: bound mode 0600 in the home, answering only this user, and
//! bound again when someone deletes or replaces its path, so that clients always find
//! the platform that holds the home's lock.
//!
//! It accepts connections; what a request does is the server's business.

use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use crossbeam_channel::Receiver;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use super::protocol::{self, Event};
use crate::error::Error;

/// How often the accept loop looks at the stop channel and at its socket's path.
const CHECK_EVERY_MS: u16 = 200;

pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    /// The inode bound at `path`: another one there means ours was replaced.
    inode: u64,
}

impl Listener {
    pub fn bind(path: &Path) -> Result<Listener, Error> {
        let _ = std::fs::remove_file(path);
        let listener =
            UnixListener::bind(path).map_err(|source| Error::io("listen on", path.to_path_buf(), source))?;
        // Only this user may drive the platform (the peer check below enforces it too).
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        listener
            .set_nonblocking(true)
            .map_err(|source| Error::io("listen on", path.to_path_buf(), source))?;
        let inode = std::fs::symlink_metadata(path).map(|m| m.ino()).unwrap_or(0);
        Ok(Listener {
            listener,
            path: path.to_path_buf(),
            inode,
        })
    }

    /// The next connection from this user, or `None` once `stop` is closed.
    pub fn next(&mut self, stop: &Receiver<()>) -> Option<UnixStream> {
        loop {
            if matches!(
                stop.try_recv(),
                Err(crossbeam_channel::TryRecvError::Disconnected)
            ) {
                return None;
            }
            let ready = {
                let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::from(CHECK_EVERY_MS)).unwrap_or(0)
            };
            if ready == 0 {
                self.bind_again_if_gone();
                continue;
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Some(stream) = admit(stream) {
                        return Some(stream);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.bind_again_if_gone(),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A deleted or replaced socket path leaves a platform no client can reach, and
    /// the next `deploy` would start a second one: bind the path again.
    fn bind_again_if_gone(&mut self) {
        let here = std::fs::symlink_metadata(&self.path).map(|m| m.ino()).ok();
        if here == Some(self.inode) {
            return;
        }
        if let Ok(fresh) = Listener::bind(&self.path) {
            println!(
                "{} was deleted or replaced: listening on it again",
                self.path.display()
            );
            *self = fresh;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only our own socket: a path someone replaced is not ours to delete.
        let here = std::fs::symlink_metadata(&self.path).map(|m| m.ino()).ok();
        if here == Some(self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A connection from this user as it is, blocking; anyone else is told why and dropped.
/// The socket's mode already keeps others out; this holds even if its folder or mode
/// were loosened.
fn admit(mut stream: UnixStream) -> Option<UnixStream> {
    let me = nix::unistd::geteuid().as_raw();
    let peer = getsockopt(&stream, PeerCredentials).map(|c| c.uid()).ok();
    if peer != Some(me) {
        let who = peer
            .map(|u| format!("uid {u}"))
            .unwrap_or_else(|| "an unknown user".into());
        let _ = protocol::write(
            &mut stream,
            &Event::Error {
                message: format!("this shipway platform answers only its own user (uid {me}), not {who}"),
            },
        );
        return None;
    }
    stream.set_nonblocking(false).ok()?;
    Some(stream)
}
