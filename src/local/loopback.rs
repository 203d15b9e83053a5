//! Free loopback ports for the local provider's listeners and instances.
//!
//! A port is found by binding port 0 and releasing it for its user to take.
//! The kernel may hand the same port out again as soon as it is released, so
//! ports needed together are found together: every probe stays bound until
//! all are picked, and they are distinct. Another process can still take one
//! in the moment between release and use; its user then fails to bind and
//! says so.

use std::net::TcpListener;

/// `n` distinct loopback ports, free when this returns.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let held = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_found_together_are_distinct() {
        for _ in 0..200 {
            let mut ports = free_ports(4).unwrap();
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(ports.len(), 4);
        }
    }
}
