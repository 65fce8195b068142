// RAMPageBitmap against the obvious model (a set of page numbers), on seeded random bitmaps,
// and the stream writer's gathered pages against plain copies.
import Foundation
import TestBoards
import Testing

@testable import VMState

@Suite struct RAMPageBitmapTests {
    /// Sparse, dense and clustered sets over page counts that do and do not fill their last word.
    func samples() -> [(bitmap: RAMPageBitmap, model: Set<Int>)] {
        var random = SplitMix64(seed: 16)  // the same bitmaps on every run
        var out: [(RAMPageBitmap, Set<Int>)] = []
        for pageCount in [1, 63, 64, 65, 200, 4096, 5000] {
            for density in [0.0, 0.02, 0.5, 0.97, 1.0] {
                var bitmap = RAMPageBitmap(pageCount: pageCount)
                var model = Set<Int>()
                for page in 0..<pageCount where Double(random.next() % 10_000) / 10_000 < density {
                    bitmap.insert(page)
                    model.insert(page)
                }
                out.append((bitmap, model))
            }
        }
        return out
    }

    @Test func runsCountsAndChunksMatchTheModel() {
        var random = SplitMix64(seed: 7)
        for (bitmap, model) in samples() {
            let n = bitmap.pageCount
            #expect(bitmap.count == model.count)
            var fromRuns: [Int] = []
            bitmap.forEachRun { run in
                #expect(!run.isEmpty)
                if let last = fromRuns.last { #expect(run.lowerBound > last + 1, "runs are maximal") }
                fromRuns += run
            }
            #expect(fromRuns == model.sorted())
            for _ in 0..<20 {
                let a = Int(random.next() % UInt64(n + 1))
                let b = Int(random.next() % UInt64(n + 1))
                let range = min(a, b)..<max(a, b)
                var inRange: [Int] = []
                bitmap.forEachRun(in: range) { inRange += $0 }
                #expect(inRange == model.filter(range.contains).sorted())
                #expect(bitmap.count(from: a) == model.filter { $0 >= a }.count)
                // A chunk of k set pages from `a` ends just past the k-th one.
                let k = Int(random.next() % 300)
                let after = model.filter { $0 >= a }.sorted()
                let expectedEnd = k == 0 ? a : (after.count >= k ? after[k - 1] + 1 : n)
                #expect(bitmap.end(afterSetPages: k, from: a) == expectedEnd, "k \(k) from \(a) of \(n)")
                var tail = RAMPageBitmap(pageCount: n)
                tail.formUnion(bitmap, from: a)
                #expect(tail.count == after.count)
                var cut = bitmap
                cut.removeAll(before: a)
                #expect(cut == tail)
                var all = RAMPageBitmap.all(pageCount: n)
                all.subtract(bitmap, in: range)
                #expect(all.count == n - model.filter(range.contains).count)
                #expect(model.filter(range.contains).allSatisfy { !all[$0] })
            }
        }
    }

    @Test func wordsBeyondThePageCountAreDropped() {
        let bitmap = RAMPageBitmap(words: [~0, ~0], pageCount: 70)
        #expect(bitmap.count == 70)
        #expect(bitmap == .all(pageCount: 70))
    }

    /// Pages go from guest memory by reference; what reaches the sink is what copying them would give.
    @Test func referencedPagesReachTheSinkAsCopiesWould() throws {
        let ram = TestRAM(pages: 700) { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 12) | 1 }
        let gathered = MemorySink()
        let copied = MemorySink()
        let a = QEMUFileWriter(sink: gathered)
        let b = QEMUFileWriter(sink: copied)
        for page in 0..<700 {
            let bytes = UnsafeRawBufferPointer(rebasing: ram.block().memory[(page * 4096)..<((page + 1) * 4096)])
            try a.putBE64(UInt64(page)); try b.putBE64(UInt64(page))
            try a.putReferenced(bytes); try b.put(bytes)
        }
        try a.flush(); try b.flush()
        #expect(gathered.bytes == copied.bytes)
        #expect(a.bytesWritten == b.bytesWritten)
    }

    /// writev's short writes (a socket with a small buffer takes a little at a time) are resumed
    /// mid-piece until every byte went, in order.
    @Test func gatheredWritesSurviveShortWrites() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]) }
        var small: Int32 = 4096
        setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let pieces = (0..<300).map { i in [UInt8](repeating: UInt8(i % 251), count: 1 + i * 37 % 5000) }
        let expected = pieces.flatMap { $0 }
        let writer = Thread { [pieces, fd = fds[1]] in
            let copies = pieces.map { piece in
                let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: piece.count, alignment: 1)
                copy.copyBytes(from: piece)
                return copy
            }
            try? FileDescriptorSink(fileDescriptor: fd).write(gathering: copies.map { UnsafeRawBufferPointer($0) })
            close(fd)
            copies.forEach { $0.deallocate() }
        }
        writer.start()
        let source = FileDescriptorSource(fileDescriptor: fds[0])
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1000)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { break }
            received += buffer[..<n]
        }
        #expect(received == expected)
    }
}
