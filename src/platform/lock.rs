//! One platform per home: an exclusive `flock` on `platform.pid`, held for the
//! platform's whole life, says which process is the platform. Clients find it through
//! that lock rather than through the socket, which a user can delete.
//!
//! It owns the pid file and the descriptors the platform inherited; it never talks to
//! the platform over its socket.

use std::fs::File;
use std::io::{Seek, Write};
use std::time::{Duration, Instant};

use nix::fcntl::Flock;

use crate::error::Error;
use crate::state::Home;

/// How long a starting platform retries the lock: a client that checks whether a
/// platform runs holds it for an instant (see `running`).
const CONTENDED_FOR: Duration = Duration::from_millis(500);

/// The platform's hold on its home; released when dropped or when the process dies.
pub struct PlatformLock {
    file: Flock<File>,
}

impl PlatformLock {
    /// Take the home's lock and write this process's pid in the pid file, or say which
    /// platform holds it.
    pub fn acquire(home: &Home) -> Result<PlatformLock, Error> {
        let deadline = Instant::now() + CONTENDED_FOR;
        loop {
            match try_lock(home)? {
                Some(mut file) => {
                    let pid = format!("{}\n", std::process::id());
                    file.set_len(0)
                        .and_then(|_| file.rewind())
                        .and_then(|_| file.write_all(pid.as_bytes()))
                        .map_err(|source| Error::io("write", home.pid_file(), source))?;
                    return Ok(PlatformLock { file });
                }
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                None => {
                    let pid = read_pid(home)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unknown".into());
                    return Err(Error::Platform {
                        message: format!(
                            "a shipway platform already runs for {} (pid {pid}); stop it with `shipway down`",
                            home.root.display()
                        ),
                    });
                }
            }
        }
    }

    /// At a clean exit: the pid file is emptied, not removed, while the lock is still
    /// held (removing it would let a platform starting now lock a file nobody finds).
    pub fn release(self) {
        let _ = self.file.set_len(0);
    }
}

/// The pid of the platform that holds the home's lock, if one runs.
pub fn running(home: &Home) -> Option<u32> {
    match try_lock(home) {
        // Nobody holds it: no platform runs (our hold ends with `file`).
        Ok(Some(_file)) => None,
        Ok(None) => read_pid(home),
        Err(_) => None,
    }
}

/// Whether a process holds the home's lock: until the platform has exited (its
/// descriptors closed), even after its clean exit emptied the pid file.
pub fn held(home: &Home) -> bool {
    matches!(try_lock(home), Ok(None))
}

/// The lock if it is free, `None` if another process holds it.
fn try_lock(home: &Home) -> Result<Option<Flock<File>>, Error> {
    Ok(crate::state::try_exclusive_lock(&home.pid_file())?)
}

fn read_pid(home: &Home) -> Option<u32> {
    // Without blocking: a FIFO put there must not hang `down`.
    let bytes = crate::state::read_regular(&home.pid_file()).ok()??;
    std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
}

/// Close every descriptor beyond 0, 1 and 2 that this process inherited: a platform
/// started by `shipway deploy ... 3>&1 | cat` would otherwise hold that pipe open for
/// its whole life, and `cat` (and the shell waiting on it) would never end.
pub fn close_inherited_descriptors() {
    // SAFETY: close_range only closes descriptors; this runs before the platform opens
    // any of its own.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if closed != 0 {
        // Kernels before 5.9: the descriptors /proc lists, collected before closing any.
        let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .filter(|fd| *fd > 2)
                    .collect()
            })
            .unwrap_or_default();
        for fd in fds {
            // SAFETY: as above; the descriptor of the read_dir is already closed (EBADF).
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_pid_is_found_through_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        assert_eq!(running(&home), None);
        let lock = PlatformLock::acquire(&home).unwrap();
        assert_eq!(running(&home), Some(std::process::id()));
        let err = PlatformLock::acquire(&home).err().unwrap().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        lock.release();
        assert_eq!(running(&home), None);
        assert_eq!(std::fs::read_to_string(home.pid_file()).unwrap(), "");
    }
}
