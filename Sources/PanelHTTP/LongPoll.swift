import Dispatch
import HTTPServer
import PanelCore

/// Any `ChangeFeed` as a long poll: what follows the cursor at once if there is something, else
/// the next change or, after `wait` seconds, an empty page. The connection waits suspended (no
/// thread held); a timer answers it if nothing else does.
enum LongPoll {
    static func respond<Feed: ChangeFeed>(_ feed: Feed, after cursor: UInt64, wait: Double) -> Response {
        let now = feed.page(after: cursor)
        if now.ready || wait <= 0 { return .json(now.page) }
        let deferred = DeferredResponse()
        let token = feed.waitForChange(after: cursor) {
            deferred.complete(.json(feed.page(after: cursor).page))
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + wait) {
            feed.cancelWait(token)
            deferred.complete(.json(feed.page(after: cursor).page))
        }
        return Response(body: .deferred(deferred))
    }
}
