// Argument vectors for QEMU, built from typed values — never a shell command line.
// QEMU parses some option values as comma-separated `key=value` lists, so every name
// that ends up inside one is checked here (a comma there would add options).
import Foundation

/// What a QEMU guest is started with.
public struct QEMUGuestConfiguration: Sendable, Codable, Equatable {
    /// The qemu-system-* binary, as a path.
    public var binary: String
    /// The canonical machine type (`pc-q35-7.2`, `virt`).
    public var machineType: String
    public var memoryMiB: Int
    /// `-bios`: a firmware path, "none", or nil for QEMU's default firmware.
    public var bios: String?
    /// `-kernel`: a path, or nil.
    public var kernel: String?
    /// Devices beyond the machine's defaults, as `-device` values (`nvme,serial=emupanel`).
    /// They come from the panel's own catalogue, never from a request.
    public var devices: [String]
    /// `-name`, shown in QEMU's messages and process list.
    public var name: String?
    /// Run under QEMU's seccomp sandbox; discovery says whether the binary has one
    /// (`QEMUBinary.sandbox`).
    public var sandbox: Bool

    public init(
        binary: String, machineType: String, memoryMiB: Int, bios: String? = nil, kernel: String? = nil,
        devices: [String] = [], name: String? = nil, sandbox: Bool = true
    ) {
        self.binary = binary
        self.machineType = machineType
        self.memoryMiB = memoryMiB
        self.bios = bios
        self.kernel = kernel
        self.devices = devices
        self.name = name
        self.sandbox = sandbox
    }
}

/// Where a QEMU started for incoming state reads it.
enum QEMUIncoming {
    /// `-incoming defer`: `migrate-incoming` names the source later.
    case deferred
    /// `-incoming fd:N`: the caller's descriptor (a connection or a file), read from QEMU's start.
    case descriptor(Int32)
}

/// An argument vector and the descriptors QEMU inherits (3, 4, … in the order passed).
struct QEMUCommandLine {
    let executable: String
    private(set) var arguments: [String] = []
    private(set) var inherited: [Int32] = []

    init(executable: String) { self.executable = executable }

    mutating func add(_ arguments: String...) { self.arguments += arguments }

    /// Hands `fd` to QEMU (QEMUInstance.launch closes it here once QEMU has it); returns the
    /// number QEMU knows it by.
    mutating func pass(_ fd: Int32) -> Int32 {
        inherited.append(fd)
        return 2 + Int32(inherited.count)
    }

    /// A QMP monitor on a listening socket passed as a descriptor (what `-qmp unix:PATH,server=on`
    /// would make, without a window in which the socket does not exist yet).
    mutating func monitor(listening fd: Int32) {
        let number = pass(fd)
        add("-chardev", "socket,id=emupanel-qmp,fd=\(number),server=on,wait=off", "-mon", "chardev=emupanel-qmp,mode=control")
    }

    /// What every QEMU the panel starts gets: no window, no user config files, and — where the
    /// binary has it (Debian's microvm build does not) — a seccomp sandbox that denies spawning,
    /// privilege changes and obsolete calls (libvirt's default).
    mutating func headless(sandbox: Bool) {
        add("-display", "none", "-no-user-config")
        if sandbox { add("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny") }
    }

    /// The guest's command line: its machine with default devices (as discovery probed it),
    /// the serial console on a socket, paused until the panel says `cont`, migration events on
    /// from the start. The monitor is added by whoever starts it (QEMUInstance). An incoming
    /// QEMU reads from a copy of the descriptor it is given (`-incoming fd:N`), from its first
    /// moment: no monitor round trip stands between its start and the stream.
    static func guest(_ configuration: QEMUGuestConfiguration, console: Int32, incoming: QEMUIncoming?) throws -> QEMUCommandLine {
        var line = QEMUCommandLine(executable: configuration.binary)
        var reading: Int32?
        if case .descriptor(let descriptor) = incoming {
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else { throw QEMUError.io(operation: "dup", errno: errno) }
            reading = copy
        }
        line.headless(sandbox: configuration.sandbox)
        let consoleNumber = line.pass(console)
        // wait=on: QEMU accepts the panel's console connection (already queued) before it
        // creates the machine, so no output can be written before anyone reads it.
        // graphics=off (a property every machine has): with no display, firmware talks on the
        // serial line (SeaBIOS and iPXE on PCs print there only then); the devices stay as probed.
        line.add(
            "-machine", configuration.machineType + ",graphics=off", "-m", "\(configuration.memoryMiB)M", "-S",
            "-chardev", "socket,id=emupanel-console,fd=\(consoleNumber),server=on,wait=on",
            "-serial", "chardev:emupanel-console", "-monitor", "none", "-parallel", "none",
            // The `events` capability as a default: on before the monitor is even connected.
            "-global", "migration.x-events=on")
        if let name = configuration.name { line.add("-name", "guest=\(name.replacingOccurrences(of: ",", with: ",,"))") }
        if let bios = configuration.bios { line.add("-bios", bios) }
        if let kernel = configuration.kernel { line.add("-kernel", kernel) }
        for device in configuration.devices { line.add("-device", device) }
        if let reading {
            line.add("-incoming", "fd:\(line.pass(reading))")
        } else if case .deferred? = incoming {
            line.add("-incoming", "defer")
        }
        return line
    }

    static func validate(_ configuration: QEMUGuestConfiguration) throws {
        guard isSafeName(configuration.machineType) else {
            throw QEMUError.invalidConfiguration("machine type '\(configuration.machineType)' is not a QEMU machine type name")
        }
        guard (1...(1 << 20)).contains(configuration.memoryMiB) else {
            throw QEMUError.invalidConfiguration("memory \(configuration.memoryMiB) MiB is out of range")
        }
        guard configuration.binary.hasPrefix("/"), !configuration.binary.contains("\0") else {
            throw QEMUError.invalidConfiguration("the QEMU binary must be an absolute path")
        }
        for path in [configuration.bios, configuration.kernel].compactMap({ $0 }) where path != "none" {
            guard path.hasPrefix("/"), !path.contains("\0") else {
                throw QEMUError.invalidConfiguration("firmware and kernel must be absolute paths: \(path)")
            }
        }
    }

    /// Letters, digits and `._-`, as QEMU's machine type names are: nothing QEMU's option
    /// parser would read as a separator.
    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }
}
