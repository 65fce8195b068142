// virtio-blk (VIRTIO 1.1 §5.2) over a BlockDevice (a qcow2 chain): one request queue,
// requests served synchronously straight between the image and guest RAM. It keeps no
// guest-visible state of its own — the transport's registers and ring positions are all a
// snapshot needs (VirtioMMIO's description) — while the disk's bytes live in the image
// chain, which snapshots freeze and migrations copy (Block.DiskChain).
import Block

final class VirtioBlock: VirtioDevice {
    // Feature bits (§5.2.3).
    static let featureReadOnly: UInt64 = 1 << 5  // VIRTIO_BLK_F_RO
    static let featureSegMax: UInt64 = 1 << 2  // VIRTIO_BLK_F_SEG_MAX
    static let featureBlockSize: UInt64 = 1 << 6  // VIRTIO_BLK_F_BLK_SIZE
    static let featureFlush: UInt64 = 1 << 9  // VIRTIO_BLK_F_FLUSH
    // Request types and status values (§5.2.6).
    static let typeIn: UInt32 = 0, typeOut: UInt32 = 1, typeFlush: UInt32 = 4, typeGetID: UInt32 = 8
    static let statusOK: UInt8 = 0, statusIOError: UInt8 = 1, statusUnsupported: UInt8 = 2
    static let sectorSize = 512
    /// QEMU's default queue-size for virtio-blk.
    static let queueSize: UInt32 = 256
    /// VIRTIO_BLK_ID_BYTES.
    static let serialLength = 20

    /// The image requests go to; the board may swap it for a new overlay between requests.
    var disk: any BlockDevice
    /// What GET_ID answers (QEMU's `serial` property), at most 20 bytes.
    let serial: String

    init(disk: any BlockDevice, serial: String) {
        self.disk = disk
        self.serial = serial
    }

    var deviceID: UInt32 { 2 }
    var queueSizeMax: UInt32 { VirtioBlock.queueSize }
    var features: UInt64 {
        VirtioBlock.featureSegMax | VirtioBlock.featureBlockSize | VirtioBlock.featureFlush
            | (disk.isReadOnly ? VirtioBlock.featureReadOnly : 0)
    }

    /// struct virtio_blk_config: capacity (sectors) at 0, size_max at 8, seg_max at 12,
    /// geometry at 16, blk_size at 20; the rest reads as zero.
    func readConfig(offset: Int, size: Int) -> UInt64 {
        var config = [UInt8](repeating: 0, count: 64)
        func put(_ value: UInt64, at offset: Int, bytes: Int) {
            for i in 0..<bytes { config[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i)) }
        }
        put(disk.sizeBytes / UInt64(VirtioBlock.sectorSize), at: 0, bytes: 8)
        put(UInt64(VirtioBlock.queueSize - 2), at: 12, bytes: 4)
        put(UInt64(VirtioBlock.sectorSize), at: 20, bytes: 4)
        guard offset >= 0, offset + size <= config.count else { return 0 }
        return (0..<size).reduce(UInt64(0)) { $0 | UInt64(config[offset + $1]) << UInt64(8 * $1) }
    }

    func process(_ chain: VirtqueueChain, ram: GuestRAM) -> UInt32 {
        let readable = chain.buffers.filter { !$0.deviceWritable }
        let writable = chain.buffers.filter(\.deviceWritable)
        // The device-writable part ends with the status byte (§5.2.6).
        guard let statusBuffer = writable.last, statusBuffer.length >= 1 else {
            GuestErrorLog.log("virtio-blk: request without a status byte")
            return 0
        }
        let statusAddress = statusBuffer.address + UInt64(statusBuffer.length - 1)
        var dataOut = writable
        dataOut[dataOut.count - 1].length -= 1
        var header = [UInt8](repeating: 0, count: 16)
        guard gather(readable, into: &header, ram: ram) == 16 else {
            return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
        }
        let type = header[0..<4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(8 * $1.offset) }
        let sector = header[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
        let dataIn = VirtioBlock.skipping(16, of: readable)

        switch type {
        case VirtioBlock.typeIn:
            let count = dataOut.reduce(0) { $0 + Int($1.length) }
            guard rangeOK(sector: sector, count: count) else { return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram) }
            var offset = sector * UInt64(VirtioBlock.sectorSize)
            for buffer in dataOut where buffer.length > 0 {
                guard let target = ram.dmaRange(buffer.address, count: Int(buffer.length)) else {
                    return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
                }
                do { try disk.read(at: offset, into: target) } catch {
                    GuestErrorLog.log("virtio-blk: \(error)")
                    return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
                }
                ram.dmaDidWrite(buffer.address, count: Int(buffer.length))
                offset += UInt64(buffer.length)
            }
            return finish(VirtioBlock.statusOK, at: statusAddress, written: UInt32(count), ram: ram)
        case VirtioBlock.typeOut:
            guard !disk.isReadOnly else { return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram) }
            let count = dataIn.reduce(0) { $0 + Int($1.length) }
            guard rangeOK(sector: sector, count: count) else { return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram) }
            var offset = sector * UInt64(VirtioBlock.sectorSize)
            for buffer in dataIn where buffer.length > 0 {
                guard let source = ram.dmaRange(buffer.address, count: Int(buffer.length)) else {
                    return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
                }
                do { try disk.write(at: offset, from: UnsafeRawBufferPointer(source)) } catch {
                    GuestErrorLog.log("virtio-blk: \(error)")
                    return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
                }
                offset += UInt64(buffer.length)
            }
            return finish(VirtioBlock.statusOK, at: statusAddress, written: 0, ram: ram)
        case VirtioBlock.typeFlush:
            do { try disk.flush() } catch {
                GuestErrorLog.log("virtio-blk: \(error)")
                return finish(VirtioBlock.statusIOError, at: statusAddress, written: 0, ram: ram)
            }
            return finish(VirtioBlock.statusOK, at: statusAddress, written: 0, ram: ram)
        case VirtioBlock.typeGetID:
            var id = Array(serial.utf8.prefix(VirtioBlock.serialLength))
            id += [UInt8](repeating: 0, count: VirtioBlock.serialLength - id.count)
            let written = scatter(id, into: dataOut, ram: ram)
            return finish(VirtioBlock.statusOK, at: statusAddress, written: UInt32(written), ram: ram)
        default:
            return finish(VirtioBlock.statusUnsupported, at: statusAddress, written: 0, ram: ram)
        }
    }

    /// Requests must cover whole sectors inside the disk.
    private func rangeOK(sector: UInt64, count: Int) -> Bool {
        let sectors = disk.sizeBytes / UInt64(VirtioBlock.sectorSize)
        return count % VirtioBlock.sectorSize == 0 && sector <= sectors
            && UInt64(count / VirtioBlock.sectorSize) <= sectors - sector
    }

    /// Writes the status byte; the used length counts it too.
    private func finish(_ status: UInt8, at address: UInt64, written: UInt32, ram: GuestRAM) -> UInt32 {
        _ = withUnsafeBytes(of: status) { ram.dmaWrite(address, from: $0) }
        return written + 1
    }

    /// Copies the start of the readable buffers into `bytes`; returns how many arrived.
    private func gather(_ buffers: [VirtqueueBuffer], into bytes: inout [UInt8], ram: GuestRAM) -> Int {
        var filled = 0
        for buffer in buffers where filled < bytes.count {
            let count = min(Int(buffer.length), bytes.count - filled)
            let ok = bytes.withUnsafeMutableBytes {
                ram.dmaRead(buffer.address, into: UnsafeMutableRawBufferPointer(rebasing: $0[filled..<filled + count]))
            }
            guard ok else { return filled }
            filled += count
        }
        return filled
    }

    private func scatter(_ bytes: [UInt8], into buffers: [VirtqueueBuffer], ram: GuestRAM) -> Int {
        var done = 0
        for buffer in buffers where done < bytes.count {
            let count = min(Int(buffer.length), bytes.count - done)
            let ok = bytes.withUnsafeBytes { ram.dmaWrite(buffer.address, from: UnsafeRawBufferPointer(rebasing: $0[done..<done + count])) }
            guard ok else { return done }
            done += count
        }
        return done
    }

    /// The buffers after the first `count` bytes.
    static func skipping(_ count: Int, of buffers: [VirtqueueBuffer]) -> [VirtqueueBuffer] {
        var left = count
        var out: [VirtqueueBuffer] = []
        for var buffer in buffers {
            if left >= Int(buffer.length) { left -= Int(buffer.length); continue }
            buffer.address += UInt64(left)
            buffer.length -= UInt32(left)
            left = 0
            out.append(buffer)
        }
        return out
    }
}
