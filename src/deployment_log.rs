//! A deployment's `<id>.log`, bounded: its first lines and its last ones, with a line in
//! between saying how much was left out. A compile that prints without end (957 MB in five
//! seconds, for one probe) cannot fill the disk through it; the live output a client
//! follows is another destination and stays whole.
//!
//! It writes one file; what goes into it, and when, is the deployment's.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::ui::Destination;
use crate::units::human_bytes;

/// What is kept of the start: where a build's story (source, selection, detection) is.
const HEAD: u64 = 2 * 1024 * 1024;
/// At least this much of the end is kept: where a failure is.
const TAIL: u64 = 2 * 1024 * 1024;
/// The part after the head grows to this before it is cut back to its last [`TAIL`]: one
/// copy of TAIL bytes for every three TAILs written keeps the cost of a flood low.
const TAIL_ROOM: u64 = 4 * TAIL;

/// The log file of one deployment, as a destination of its output.
pub struct DeploymentLog {
    file: File,
    /// Bytes of the head, all written.
    head: u64,
    /// Once the head is full: the length of the line saying what was left out (0 before
    /// anything was), then the tail.
    marker: u64,
    tail: u64,
    tail_lines: u64,
    left_out_bytes: u64,
    left_out_lines: u64,
}

impl DeploymentLog {
    /// Open (create, 0600) the log at `path`, going on after what it holds. Read too: a
    /// cut reads back the tail it keeps.
    pub fn open(path: &Path) -> std::io::Result<DeploymentLog> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = File::options()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let len = file.metadata()?.len();
        Ok(DeploymentLog::on(file, len))
    }

    fn on(file: File, len: u64) -> DeploymentLog {
        DeploymentLog {
            file,
            head: len.min(HEAD),
            marker: 0,
            tail: len.saturating_sub(HEAD),
            tail_lines: 0,
            left_out_bytes: 0,
            left_out_lines: 0,
        }
    }

    /// Cut the tail back to its last [`TAIL`] bytes, from a line's start, and say in its
    /// place how much is gone. The file is opened to append: what is written after the cut
    /// lands after it.
    fn cut(&mut self) -> std::io::Result<()> {
        let start = self.head + self.marker;
        let mut kept = vec![0u8; TAIL as usize];
        self.file.read_exact_at(&mut kept, start + self.tail - TAIL)?;
        let from = kept.iter().position(|b| *b == b'\n').map_or(0, |i| i + 1);
        let kept = &kept[from..];
        let kept_lines = kept.iter().filter(|b| **b == b'\n').count() as u64;
        self.left_out_bytes += self.tail - kept.len() as u64;
        self.left_out_lines += self.tail_lines.saturating_sub(kept_lines);
        let marker = format!(
            "<-- {} of output ({} lines) left out here: a deployment log keeps its first {} and its last {} or so; the live output showed it all -->\n",
            human_bytes(self.left_out_bytes),
            self.left_out_lines,
            human_bytes(HEAD),
            human_bytes(TAIL),
        );
        self.file.set_len(self.head)?;
        self.file.write_all(marker.as_bytes())?;
        self.file.write_all(kept)?;
        self.marker = marker.len() as u64;
        self.tail = kept.len() as u64;
        self.tail_lines = kept_lines;
        Ok(())
    }
}

impl Destination for DeploymentLog {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        let bytes = format!("{line}\n");
        let n = bytes.len() as u64;
        if self.tail == 0 && self.marker == 0 && self.head + n <= HEAD {
            self.head += n;
        } else {
            self.tail += n;
            self.tail_lines += 1;
        }
        // One write per line, as every log of shipway's.
        self.file.write_all(bytes.as_bytes())?;
        if self.tail > TAIL_ROOM {
            self.cut()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_keeps_the_head_and_the_tail_and_says_what_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let mut log = DeploymentLog::open(&path).unwrap();
        log.line("-----> first").unwrap();
        // 40 MiB of numbered lines: ten times what the file may hold.
        let filler = "x".repeat(1000);
        let total = 40 * 1024;
        for i in 0..total {
            log.line(&format!("{i:08} {filler}")).unwrap();
        }
        log.line("-----> last").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let size = text.len() as u64;
        assert!(size <= HEAD + TAIL_ROOM + 1024, "{size} bytes");
        assert!(text.starts_with("-----> first\n00000000 "));
        assert!(text.ends_with("-----> last\n"));
        let marker = text
            .lines()
            .find(|l| l.starts_with("<-- "))
            .expect("a line saying what was left out");
        assert!(marker.contains("lines) left out here"), "{marker}");
        // Every line is whole, and the numbers kept plus those left out are all of them.
        let numbered: Vec<u64> = text
            .lines()
            .filter(|l| l.len() == 1009)
            .map(|l| l[..8].parse().unwrap())
            .collect();
        let said: u64 = marker
            .split(" (")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(numbered.len() as u64 + said, total);
        assert!(numbered.windows(2).filter(|w| w[1] != w[0] + 1).count() == 1);
    }

    #[test]
    fn a_short_log_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.log");
        let mut log = DeploymentLog::open(&path).unwrap();
        for l in ["a", "b", "c"] {
            log.line(l).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\nc\n");
    }
}
