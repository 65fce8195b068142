// swift-tools-version: 6.1
// emupanel: a web-served control panel for a RISC-V emulator, with snapshots
// and live migration. Module map and dependency rules: docs/ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "emupanel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "emupanel", targets: ["emupanel"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // Tests only: property-based round trips of device state (Tests/VMStateTests).
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
    ],
    targets: [
        // libmicrohttpd as Debian ships it, plus the inline C shim for its variadic calls.
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        // libmicrohttpd's own error answers in the server's JSON shape (answers.c says how).
        .target(name: "CMicroHTTPDAnswers", dependencies: ["CMicroHTTPD"]),
        .target(
            name: "HTTPServer",
            dependencies: [
                "CMicroHTTPD", "CMicroHTTPDAnswers",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(name: "VMState"),
        .target(name: "EmulatorCore", dependencies: ["VMState"]),
        // Disk images: qcow2 (with backing chains) and raw, behind one BlockDevice protocol.
        .target(name: "Block"),
        // The interpreter's threaded core: the common integer ops with one indirect jump per op.
        .target(name: "CInterpreterCore"),
        .target(name: "RISCV", dependencies: ["EmulatorCore", "VMState", "Block", "CInterpreterCore"]),
        // sync_file_range, which Swift's Glibc module does not declare.
        .target(name: "CFileSync"),
        // Debian's libxxhash: XXH3-128, the checksum snapshot files are written and checked with.
        .systemLibrary(
            name: "CXXHash",
            pkgConfig: "libxxhash",
            providers: [.apt(["libxxhash-dev"])]
        ),
        .target(
            name: "Migration",
            dependencies: [
                "EmulatorCore", "VMState", "RISCV", "CFileSync", "CXXHash",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // posix_spawn's GNU file actions and SCM_RIGHTS, for starting QEMU and passing it descriptors.
        .target(name: "CProcessIO"),
        // QEMU as a second backend: QMP, the QEMU process, discovery and tiers, the guest driver.
        .target(
            name: "QEMUBackend",
            dependencies: [
                "CProcessIO", "EmulatorCore", "VMState", "Migration",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // `emupanel run`'s policy: QEMU-like options and defaults, exit statuses, save/load at N.
        .target(name: "Headless", dependencies: ["EmulatorCore", "VMState", "RISCV", "Migration"]),
        // The panel's services: guests, tasks, events, snapshots, migration; no HTTP in it.
        .target(
            name: "PanelCore",
            dependencies: [
                "EmulatorCore", "RISCV", "Migration", "Headless", "VMState", "QEMUBackend", "Block",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The services over HTTP: controllers, auth, the one error → status mapping, long poll and SSE.
        .target(
            name: "PanelHTTP",
            dependencies: [
                "PanelCore", "HTTPServer", "EmulatorCore",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "emupanel",
            dependencies: [
                "PanelHTTP", "PanelCore", "Headless", "EmulatorCore", "VMState", "RISCV", "Migration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // libFuzzer target for the stream reader: scripts/fuzz builds it with
        // -sanitize=fuzzer,address; a plain build replays files given as arguments.
        .target(name: "CFuzzDriver"),
        .executableTarget(name: "FuzzVMState", dependencies: ["CFuzzDriver", "VMState"]),
        .target(name: "HTTPTestSupport", path: "Tests/HTTPTestSupport"),
        // The devices of the tests' small boards, shared by the test targets that build one.
        .target(name: "TestBoards", dependencies: ["EmulatorCore", "VMState"], path: "Tests/TestBoards"),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HTTPTestSupport"]),
        .testTarget(
            name: "MigrationTests", dependencies: ["HTTPTestSupport", "TestBoards", "Migration", "VMState", "RISCV", "EmulatorCore", "CXXHash"]),
        .testTarget(
            name: "RISCVTests", dependencies: ["RISCV", "CInterpreterCore", "Headless", "TestBoards", "EmulatorCore", "VMState", "Block"]),
        .testTarget(name: "BlockTests", dependencies: ["Block"]),
        .testTarget(
            name: "PanelTests",
            dependencies: [
                "PanelHTTP", "PanelCore", "HTTPServer", "HTTPTestSupport", "TestBoards", "EmulatorCore", "VMState", "RISCV", "Migration", "CXXHash",
                "Block",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        // Runs the built `emupanel` binary as a subprocess (so `swift build --build-tests` first).
        .testTarget(name: "CLITests", dependencies: ["TestBoards", "EmulatorCore", "VMState"]),
        // Runs the installed qemu-system-* binaries (make test installs them).
        .testTarget(
            name: "QEMUBackendTests",
            dependencies: [
                "QEMUBackend", "EmulatorCore", "VMState", "Migration", "CXXHash",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .testTarget(
            name: "VMStateTests",
            dependencies: [
                "VMState", "TestBoards",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
        .testTarget(
            name: "EmulatorCoreTests",
            dependencies: [
                "EmulatorCore", "VMState", "TestBoards",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]),
    ]
)
