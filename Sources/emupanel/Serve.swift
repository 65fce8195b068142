import ArgumentParser
import Dispatch
import Foundation
import Logging
import PanelCore
import PanelHTTP

extension Emupanel {
    /// `emupanel serve`: the panel on 127.0.0.1 until SIGINT or SIGTERM.
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the web panel and its REST API.")

        @Option(help: "Configuration file (JSON). Missing keys take defaults.")
        var config: String?

        @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:8080).")
        var listen: String?

        @Option(help: "Directory for guests, snapshots and the generated token.")
        var dataDir: String?

        @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .info

        func validate() throws {
            if let listen { _ = try PanelConfiguration.parseListen(listen) }
        }

        func run() throws {
            // Signals are caught from the first moment: a SIGTERM while saved guests are being
            // resumed is answered by a clean stop (with its managed save) once start-up is done,
            // never by the default action, which would lose them.
            let termination = Termination()
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = logLevel
                return handler
            }
            var configuration = try config.map(PanelConfiguration.load(path:)) ?? PanelConfiguration()
            if let listen { configuration.listen = listen }
            if let dataDir { configuration.settings.dataDir = dataDir }
            let app = try PanelApp(configuration: configuration, machines: MachineCatalog.registry)
            try app.start()
            print("emupanel \(app.configuration.listen) (release \(PanelCore.Release.current))")
            switch app.token.source {
            case .generated: print("Generated an admin token in \(app.configuration.settings.dataDir)/admin-token")
            case .environment: print("Admin token from EMUPANEL_TOKEN")
            case .configuration: print("Admin token from the configuration")
            case .file: print("Admin token from \(app.configuration.settings.dataDir)/admin-token")
            }
            print("Open \(app.loginURL)")
            fflush(nil)
            termination.wait()
            app.stop()
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment this exists until the process ends.
private final class Termination {
    private let received = DispatchSemaphore(value: 0)
    private let sources: [any DispatchSourceSignal]

    init() {
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [received] in received.signal() }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// Blocks until a signal arrived (at once if one came before).
    func wait() {
        received.wait()
        withExtendedLifetime(sources) {}
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
