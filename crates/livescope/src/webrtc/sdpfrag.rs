//! Trickle ICE fragments (`application/trickle-ice-sdpfrag`, RFC 8840) as WHIP and WHEP
//! clients PATCH them: new candidates, or new ICE credentials for an ICE restart.

/// What a fragment says.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SdpFrag {
    /// `a=ice-ufrag` and `a=ice-pwd`, when both are given.
    pub credentials: Option<(String, String)>,
    /// The values of the `a=candidate` lines (`candidate:...`).
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

/// Fragments are small; a longer body is not one.
pub const MAX_LEN: usize = 16 * 1024;

impl SdpFrag {
    /// Reads a fragment. Unknown lines are skipped, as RFC 8840 asks; a fragment with
    /// half the credentials is an error.
    pub fn parse(text: &str) -> Result<SdpFrag, String> {
        let mut frag = SdpFrag::default();
        let (mut ufrag, mut pwd) = (None, None);
        for line in text.lines().map(str::trim) {
            let Some(attr) = line.strip_prefix("a=") else {
                continue;
            };
            if let Some(v) = attr.strip_prefix("ice-ufrag:") {
                ufrag = Some(v.trim().to_owned());
            } else if let Some(v) = attr.strip_prefix("ice-pwd:") {
                pwd = Some(v.trim().to_owned());
            } else if attr.starts_with("candidate:") {
                frag.candidates.push(attr.to_owned());
            } else if attr == "end-of-candidates" {
                frag.end_of_candidates = true;
            }
        }
        frag.credentials = match (ufrag, pwd) {
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some((u, p)),
            (None, None) => None,
            _ => return Err("an ICE restart needs both a=ice-ufrag and a=ice-pwd".into()),
        };
        Ok(frag)
    }
}

/// The server's side of an ICE restart: its new credentials and its candidate.
pub fn answer(ufrag: &str, pwd: &str, candidate: &str) -> String {
    format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na={candidate}\r\na=end-of-candidates\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_candidates_and_restarts_as_browsers_send_them() {
        let trickle = "a=ice-options:trickle ice2\r\na=group:BUNDLE 0 1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\na=end-of-candidates\r\n";
        let frag = SdpFrag::parse(trickle).unwrap();
        assert_eq!(frag.credentials, None);
        assert_eq!(frag.candidates.len(), 1);
        assert!(frag.candidates[0].starts_with("candidate:1387637174 1 udp"));
        assert!(frag.end_of_candidates);
        let restart = SdpFrag::parse("a=ice-ufrag:ZZy2\na=ice-pwd:p2uYro0UCOQ4zxjKXaWCBui1\n").unwrap();
        assert_eq!(
            restart.credentials,
            Some(("ZZy2".into(), "p2uYro0UCOQ4zxjKXaWCBui1".into()))
        );
        assert!(SdpFrag::parse("a=ice-ufrag:ZZy2\n").is_err());
        assert_eq!(SdpFrag::parse("garbage\0\u{fffd}").unwrap(), SdpFrag::default());
    }
}
