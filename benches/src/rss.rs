//! The resident memory and CPU time of the processes under test, from `/proc` (Linux).

/// CPU time in seconds: in the processes' own code (user) and in the kernel on their behalf
/// (system: system calls, the network stack, scheduling).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
}

impl CpuTimes {
    /// User and system together.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// What was used since `start`.
    pub fn since(&self, start: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - start.user,
            system: self.system - start.system,
        }
    }
}

/// The CPU time `pids` have used so far; `None` when one of them cannot be read.
pub fn cpu_times(pids: &[u32]) -> Option<CpuTimes> {
    // `/proc/PID/stat` counts in clock ticks, 100 a second on Linux.
    const TICKS: f64 = 100.0;
    let (mut user, mut system) = (0u64, 0u64);
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces, inside parentheses).
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        user += fields.get(11)?.parse::<u64>().ok()?;
        system += fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(CpuTimes {
        user: user as f64 / TICKS,
        system: system as f64 / TICKS,
    })
}

/// The PID of the process listening on `port` on this machine, from `/proc/net/tcp{,6}` and
/// the processes' open sockets.
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 {
                continue;
            }
            // st 0A is LISTEN; local address is HEXIP:HEXPORT.
            let local_port = fields[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if fields[3] == "0A" && local_port == Some(port) {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| link.to_string_lossy() == *i) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

/// Resident set size of a process, in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
