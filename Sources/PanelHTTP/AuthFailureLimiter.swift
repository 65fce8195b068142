import Foundation
import HTTPServer
import Logging
import PanelCore
import Synchronization

/// Failed authentication per client (issue 11 item 16): every failure is logged, and a client
/// that fails `burst` times is refused with 429 `rate_limited` and Retry-After until it has earned
/// an attempt back (one per `refillSeconds`), as fail2ban or Proxmox's login delay would.
///
/// While limited, a client's credentials are not looked at, right or wrong: answering a right
/// guess differently would tell a guesser when to stop. Requests without credentials (a page
/// asking whether it is logged in) are not failures. Clients are counted by `ClientAddress.network`
/// (an IPv6 /64 is one client); the table is bounded, and clients that have earned all their
/// attempts back are forgotten first.
public final class AuthFailureLimiter: Sendable {
    /// What the configuration calls `authRateLimit`.
    public struct Policy: Sendable, Codable, Equatable {
        /// Failures allowed in a row before a client is refused.
        public var burst = 10
        /// One more attempt is allowed per this many seconds.
        public var refillSeconds: Double = 6

        public init() {}

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Policy()
            burst = try container.decodeIfPresent(Int.self, forKey: .burst) ?? defaults.burst
            refillSeconds = try container.decodeIfPresent(Double.self, forKey: .refillSeconds) ?? defaults.refillSeconds
        }

        public func validate() throws {
            guard (1...10_000).contains(burst) else { throw ConfigurationError("authRateLimit.burst must be 1...10000") }
            guard refillSeconds > 0, refillSeconds <= 86_400 else {
                throw ConfigurationError("authRateLimit.refillSeconds must be in (0, 86400]")
            }
        }
    }

    private struct Bucket {
        var attempts: Double
        var updated: ContinuousClock.Instant
        /// Whether the "now limited" line was logged for this stretch.
        var limitLogged = false
    }

    private let policy: Policy
    private let logger: Logger
    private let buckets = Mutex<[ClientAddress: Bucket]>([:])
    static let maxClients = 4096

    init(policy: Policy, logger: Logger) {
        self.policy = policy
        self.logger = logger
    }

    /// 429 when `client` has no attempt left; nil when it may try.
    func refusal(for client: ClientAddress, path: String) -> HTTPError? {
        let now = ContinuousClock.now
        let verdict: (wait: Int, firstRefusal: Bool)? = buckets.withLock { buckets in
            guard var bucket = buckets[client.network] else { return nil }
            refill(&bucket, now: now)
            defer { buckets[client.network] = bucket }
            guard bucket.attempts < 1 else { return nil }
            let first = !bucket.limitLogged
            bucket.limitLogged = true
            return (max(1, Int(((1 - bucket.attempts) * policy.refillSeconds).rounded(.up))), first)
        }
        guard let verdict else { return nil }
        // Once per stretch: a flood of refused attempts must not become a flood of log lines.
        if verdict.firstRefusal {
            logger.warning(
                "authentication refused: too many failures",
                metadata: [
                    "client": "\(client)", "path": "\(path)", "retryAfterSeconds": "\(verdict.wait)",
                ])
        }
        return HTTPError(
            .tooManyRequests, code: "rate_limited",
            message: "too many failed attempts from this address; retry in \(verdict.wait) s",
            headers: [("Retry-After", String(verdict.wait))])
    }

    /// Logs a failed attempt (never the credential itself) and counts it against the client.
    func failed(_ client: ClientAddress, path: String, reason: String) {
        let now = ContinuousClock.now
        let left = buckets.withLock { buckets -> Double in
            if buckets[client.network] == nil, buckets.count >= Self.maxClients { forgetSome(&buckets, now: now) }
            var bucket = buckets[client.network] ?? Bucket(attempts: Double(policy.burst), updated: now)
            refill(&bucket, now: now)
            bucket.attempts = max(0, bucket.attempts - 1)
            if bucket.attempts >= 1 { bucket.limitLogged = false }
            buckets[client.network] = bucket
            return bucket.attempts
        }
        logger.warning(
            "authentication failed",
            metadata: [
                "client": "\(client)", "path": "\(path)", "reason": "\(reason)", "attemptsLeft": "\(Int(left))",
            ])
    }

    private func refill(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let elapsed = now - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        bucket.attempts = min(Double(policy.burst), bucket.attempts + seconds / policy.refillSeconds)
        bucket.updated = now
    }

    /// Makes room: clients back to a full set of attempts first, then those closest to it.
    private func forgetSome(_ buckets: inout [ClientAddress: Bucket], now: ContinuousClock.Instant) {
        for key in Array(buckets.keys) {
            refill(&buckets[key]!, now: now)
            if buckets[key]!.attempts >= Double(policy.burst) { buckets.removeValue(forKey: key) }
        }
        while buckets.count >= Self.maxClients, let fullest = buckets.max(by: { $0.value.attempts < $1.value.attempts }) {
            buckets.removeValue(forKey: fullest.key)
        }
    }
}
