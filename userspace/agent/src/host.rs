//! This host's own addresses, as the kernel reports them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every address on every interface of this host (its network namespace), loopback included.
pub fn interface_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    // SAFETY: getifaddrs fills a list we free with freeifaddrs; we read only what it wrote.
    unsafe {
        let mut ifs: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut ifs) == 0 {
            let mut p = ifs;
            while !p.is_null() {
                let a = (*p).ifa_addr;
                if !a.is_null() {
                    match i32::from((*a).sa_family) {
                        libc::AF_INET => {
                            let sin = &*(a as *const libc::sockaddr_in);
                            out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                                sin.sin_addr.s_addr,
                            ))));
                        }
                        libc::AF_INET6 => {
                            let sin6 = &*(a as *const libc::sockaddr_in6);
                            out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                        }
                        _ => {}
                    }
                }
                p = (*p).ifa_next;
            }
            libc::freeifaddrs(ifs);
        }
    }
    out
}
