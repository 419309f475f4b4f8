//! IP networks (`--trust-proxy`, `--admin-allow`) and address classes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network in CIDR notation. A bare address is a /32 or /128.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(net) ^ u32::from(*ip);
                self.prefix == 0 || bits >> (32 - u32::from(self.prefix)) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u128::from(net) ^ u128::from(*ip);
                self.prefix == 0 || bits >> (128 - u32::from(self.prefix)) == 0
            }
            (IpAddr::V6(_), IpAddr::V4(v4)) => self.contains(&IpAddr::V6(v4.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => self.contains(&IpAddr::V4(v4)),
                None => false,
            },
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Private, loopback, link-local or unique-local addresses: never a real customer's.
pub fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_loopback() || v4.is_link_local() || {
                // 100.64.0.0/10 carrier-grade NAT
                let o = v4.octets();
                o[0] == 100 && (64..128).contains(&o[1])
            }
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_internal(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_v4_v6() {
        let n: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(&"10.1.2.3".parse().unwrap()));
        assert!(!n.contains(&"11.1.2.3".parse().unwrap()));
        assert!(n.contains(&"::ffff:10.9.9.9".parse().unwrap()));
        let n6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(n6.contains(&"2001:db8:1::5".parse().unwrap()));
        assert!(!n6.contains(&"2001:db9::5".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn internal_addresses() {
        assert!(is_internal(&"192.168.1.1".parse().unwrap()));
        assert!(is_internal(&"fd00::1".parse().unwrap()));
        assert!(!is_internal(&"203.0.113.5".parse().unwrap()));
    }
}
