//! Following a file another process appends to (an app's log, a deployment's log): the
//! complete lines added since the last read. `logs -f` and `deployment-follow` share it;
//! it reads, and prints nothing.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use crate::state::open_regular;

/// What to do when the file is found shorter than what was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnShrink {
    /// It was rotated (`app.log`): read the new one from its start.
    Restart,
    /// It was cut in place (a deployment's log keeps its head and its last lines): go on
    /// from its new end, what was left out being said in it.
    Skip,
}

pub struct Follower {
    path: PathBuf,
    offset: u64,
    pending: Vec<u8>,
    on_shrink: OnShrink,
}

impl Follower {
    pub fn from_start(path: PathBuf, on_shrink: OnShrink) -> Follower {
        Follower {
            path,
            offset: 0,
            pending: Vec::new(),
            on_shrink,
        }
    }

    /// From what the file holds now: only what is appended later.
    pub fn from_end(path: PathBuf, on_shrink: OnShrink) -> Follower {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Follower {
            offset,
            ..Follower::from_start(path, on_shrink)
        }
    }

    /// The whole lines appended since the last call (without their newline); a last line
    /// still being written waits for its end.
    pub fn lines(&mut self) -> Vec<Vec<u8>> {
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = match self.on_shrink {
                OnShrink::Restart => 0,
                OnShrink::Skip => len,
            };
            self.pending.clear();
        }
        if len == self.offset {
            return Vec::new();
        }
        // Without blocking, and a regular file only: a FIFO in its place must not hang.
        let Ok(Some(mut file)) = open_regular(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut chunk = Vec::new();
        let Ok(n) = file.read_to_end(&mut chunk) else {
            return Vec::new();
        };
        self.offset += n as u64;
        self.pending.extend_from_slice(&chunk);
        let mut lines = Vec::new();
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=i).collect();
            line.pop();
            lines.push(line);
        }
        lines
    }
}
