//! URLs as errors and logs show them: a URL given to a destination may
//! carry a secret (a password in `user:password@`, a key id, a token in
//! the path as Telegram's bot URLs do), and a start-up error or a log line
//! is read by more people than the configuration.

/// `url` without the password of its `user:password@`.
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// `url`'s scheme and host (and port) alone, `/…` for the rest: no user,
/// no password, no path.
pub(crate) fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if tail.is_empty() { "" } else { "/…" };
    format!("{scheme}://{host}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_paths_are_not_shown() {
        assert_eq!(without_password("sftp://u:pw@h:22/x"), "sftp://u@h:22/x");
        assert_eq!(without_password("sftp://u@h/x:y@z"), "sftp://u@h/x:y@z");
        assert_eq!(without_password("http://h/p"), "http://h/p");
        assert_eq!(
            origin("https://AK:SECRET@host:9000/bot123:tok/send"),
            "https://host:9000/…"
        );
        assert_eq!(origin("http://host"), "http://host");
        assert_eq!(origin("no scheme: secret"), "(not a URL)");
    }
}
