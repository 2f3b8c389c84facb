//! Which credentials a request that a test server received carries, to check that a credential
//! went only where it belongs (never to another origin, never after a redirect elsewhere).

/// The headers that carry a credential in the tests: the standard ones and the api-key header
/// names the tests configure.
pub const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-token",
    "x-source-key",
];

/// The query parameter the tests put an api key in.
pub const API_KEY_PARAM: &str = "api_key";

/// The credential headers among `headers` (by name, lower case) and `api_key=VALUE` for an
/// api-key query parameter: empty when the request carries none.
///
/// ```
/// use cannectors_test_support::credentials::found;
///
/// let headers = ["accept", "Authorization"];
/// let query = [("page", "2"), ("api_key", "k-1")];
/// assert_eq!(found(headers, query), ["authorization", "api_key=k-1"]);
/// assert!(found(["accept"], [("page", "2")]).is_empty());
/// ```
pub fn found<'a>(
    headers: impl IntoIterator<Item = &'a str>,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let headers: Vec<String> = headers.into_iter().map(str::to_ascii_lowercase).collect();
    let mut found: Vec<String> = CREDENTIAL_HEADERS
        .into_iter()
        .filter(|name| headers.iter().any(|header| header == name))
        .map(str::to_owned)
        .collect();
    found.extend(
        query
            .into_iter()
            .filter(|(name, _)| *name == API_KEY_PARAM)
            .map(|(name, value)| format!("{name}={value}")),
    );
    found
}

/// What of a request a wiremock server received could be a credential, as [`found`] says it.
#[cfg(feature = "wiremock")]
pub fn in_wiremock_request(request: &wiremock::Request) -> Vec<String> {
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    found(
        request.headers.keys().map(|name| name.as_str()),
        query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
}
