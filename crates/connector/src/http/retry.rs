//! When to try a request again, and how long to wait before it.
//!
//! The delay after the n-th failed attempt is `delayMs * backoffMultiplier^(n-1)`, capped at
//! `maxDelayMs`. A `Retry-After` header (seconds or an HTTP-date) replaces the computed delay
//! when `useRetryAfterHeader` is on, and is capped the same way: a server asking for an hour
//! must not stall a pipeline for an hour.

use std::time::{Duration, SystemTime};

use cannectors_config::{Expression, RetryConfig};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// The retry settings of one client.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    max_retries: u32,
    delay: Duration,
    multiplier: f64,
    max_delay: Duration,
    statuses: Vec<u16>,
    use_retry_after: bool,
    hint: Option<Expression>,
}

impl RetryPolicy {
    pub(crate) fn new(config: &RetryConfig) -> RetryPolicy {
        RetryPolicy {
            max_retries: config.max_retries(),
            delay: config.delay(),
            multiplier: config.backoff_multiplier(),
            max_delay: config.max_delay(),
            statuses: config.retryable_status_codes().to_vec(),
            use_retry_after: config.use_retry_after_header(),
            hint: config.retry_hint_from_body().cloned(),
        }
    }

    /// Whether `retryHintFromBody` lets a response with a retryable status be tried again:
    /// yes without a hint, and when the body is not JSON or the hint cannot be evaluated on it
    /// (the status code decides, as without a hint).
    pub(crate) fn body_allows_retry(&self, status: u16, body: &[u8]) -> bool {
        let Some(hint) = &self.hint else {
            return true;
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
            return true;
        };
        let variables = serde_json::json!({"status": status, "body": body});
        match hint.is_true(&variables) {
            Ok(allowed) => allowed,
            Err(error) => {
                tracing::warn!(
                    "retry.retryHintFromBody: {error}; the status code decides whether to retry"
                );
                true
            }
        }
    }

    /// Attempts in all: the first, then `maxAttempts` retries.
    pub(crate) fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// Whether a response with this status is worth another attempt.
    pub(crate) fn retries_status(&self, status: u16) -> bool {
        self.statuses.contains(&status)
    }

    /// The wait after attempt number `failed_attempt` (1 for the first) failed.
    pub(crate) fn backoff(&self, failed_attempt: u32) -> Duration {
        let exponent = i32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let factor = self.multiplier.powi(exponent);
        let millis = self.delay.as_millis() as f64 * factor;
        let max = self.max_delay.as_millis() as f64;
        if !millis.is_finite() || millis >= max {
            self.max_delay
        } else if millis <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_millis(millis as u64)
        }
    }

    /// The wait after a retryable response: what `Retry-After` asks when honoured, else the
    /// backoff.
    pub(crate) fn delay_after_response(
        &self,
        failed_attempt: u32,
        headers: &HeaderMap,
    ) -> Duration {
        let asked = self
            .use_retry_after
            .then(|| headers.get(RETRY_AFTER)?.to_str().ok())
            .flatten()
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        match asked {
            Some(wait) => wait.min(self.max_delay),
            None => self.backoff(failed_attempt),
        }
    }
}

/// Reads `Retry-After`: a number of seconds, or an HTTP-date (a date in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policy of a `retry` block, loaded as a pipeline file is.
    fn policy_of(retry: serde_json::Value) -> RetryPolicy {
        let text = serde_json::json!({
            "name": "p",
            "input": {"type": "httpPolling", "endpoint": "http://127.0.0.1:9/", "retry": retry},
            "output": {"type": "stdout"},
        });
        let loaded = cannectors_config::parse_str(&text.to_string(), "p.json", &|_| None).unwrap();
        let cannectors_config::InputConfig::HttpPolling(input) = &loaded.pipeline.input else {
            panic!("an httpPolling input");
        };
        RetryPolicy::new(&input.retry)
    }

    fn policy(delay_ms: u64, multiplier: f64, max_delay_ms: u64) -> RetryPolicy {
        policy_of(serde_json::json!({
            "delayMs": delay_ms,
            "backoffMultiplier": multiplier,
            "maxDelayMs": max_delay_ms,
        }))
    }

    #[test]
    fn backoff_grows_by_the_multiplier_and_stops_at_the_cap() {
        let policy = policy(100, 2.0, 500);
        let delays: Vec<u128> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn backoff_survives_absurd_multipliers() {
        // The delay overflows to infinity long before the 40th attempt.
        assert_eq!(
            policy(100, 1e300, 700).backoff(40),
            Duration::from_millis(700)
        );
        assert_eq!(
            policy(100, 1e300, 700).backoff(u32::MAX),
            Duration::from_millis(700)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_is_capped_at_the_maximum_delay() {
        let policy = policy(100, 2.0, 1_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(
            policy.delay_after_response(1, &headers),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn retry_after_is_ignored_when_switched_off() {
        let policy = policy_of(serde_json::json!({"delayMs": 10, "useRetryAfterHeader": false}));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "20".parse().unwrap());
        assert_eq!(
            policy.delay_after_response(1, &headers),
            Duration::from_millis(10)
        );
    }
}
