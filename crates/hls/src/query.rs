//! The delivery directives of a playlist request (RFC 8216bis 6.2.5): `_HLS_msn`,
//! `_HLS_part` and `_HLS_skip`. Garbage is an error, never a panic.

/// What a playlist request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query {
    /// Block until this media sequence number is in the playlist.
    pub msn: Option<u64>,
    /// ... and this partial segment of it.
    pub part: Option<u32>,
    pub skip: Skip,
}

/// Delta update request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Skip {
    #[default]
    No,
    /// `_HLS_skip=YES`: skip old media segments.
    Yes,
    /// `_HLS_skip=v2`: also skip old date ranges (we have none), so the same as `Yes`.
    V2,
}

/// Why a query is refused (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("{name} is not a valid number: {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("_HLS_part needs _HLS_msn")]
    PartWithoutMsn,
    #[error("_HLS_skip must be YES or v2, not {0:?}")]
    BadSkip(String),
}

impl Query {
    /// Parses a URL query string such as `_HLS_msn=12&_HLS_part=3`. Unknown parameters
    /// (cache busters, tokens) are ignored.
    pub fn parse(query: &str) -> Result<Query, QueryError> {
        let mut q = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_HLS_msn" => q.msn = Some(number(name_of(name), value)?),
                "_HLS_part" => q.part = Some(number(name_of(name), value)?),
                "_HLS_skip" => {
                    q.skip = match value {
                        "YES" => Skip::Yes,
                        "v2" => Skip::V2,
                        other => return Err(QueryError::BadSkip(other.chars().take(32).collect())),
                    }
                }
                _ => {}
            }
        }
        if q.part.is_some() && q.msn.is_none() {
            return Err(QueryError::PartWithoutMsn);
        }
        Ok(q)
    }
}

fn name_of(name: &str) -> &'static str {
    if name == "_HLS_msn" { "_HLS_msn" } else { "_HLS_part" }
}

fn number<T: std::str::FromStr>(name: &'static str, value: &str) -> Result<T, QueryError> {
    // Only plain decimal digits: no signs, no spaces, no hex.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::NotANumber {
            name,
            value: value.chars().take(32).collect(),
        });
    }
    value.parse().map_err(|_| QueryError::NotANumber {
        name,
        value: value.chars().take(32).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_and_refuses_garbage() {
        assert_eq!(Query::parse("").unwrap(), Query::default());
        assert_eq!(
            Query::parse("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&token=x").unwrap(),
            Query {
                msn: Some(12),
                part: Some(3),
                skip: Skip::Yes
            }
        );
        assert_eq!(Query::parse("_HLS_skip=v2").unwrap().skip, Skip::V2);
        assert!(Query::parse("_HLS_part=1").is_err());
        assert!(Query::parse("_HLS_msn=-1").is_err());
        assert!(Query::parse("_HLS_msn=99999999999999999999999").is_err());
        assert!(Query::parse("_HLS_msn=1&_HLS_part=%20").is_err());
        assert!(Query::parse("_HLS_skip=yes").is_err());
    }
}
