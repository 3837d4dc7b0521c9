import ArgumentParser
import SliceKV

/// `slice snapshot create|list|delete`: named snapshots kept inside the store's directory
/// (the same ones a mount shows under `.snapshots`); read one with `get`/`scan --snapshot NAME`.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Create, list and delete named snapshots of a store.",
        discussion: """
            A snapshot is the store at one instant, kept in DATA_DIR/snapshots/NAME (hard links \
            to the store's immutable files: free until the store compacts them away, then it \
            keeps them). Read it with `slice get|scan DATA_DIR --snapshot NAME`; a mount shows \
            it as .snapshots/NAME. A mounted store is locked by its mount: use mkdir/rmdir in \
            .snapshots there instead.
            """,
        subcommands: [Create.self, List.self, Delete.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a snapshot named NAME.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The snapshot's name.") var name: String

        func run() throws { try store.changing { try $0.createSnapshot(named: name) } }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List snapshots: name, bytes, bytes kept only by snapshots (tab-separated).")
        @OptionGroup var store: StoreOptions

        func run() throws {
            try runReporting {
                let db = try store.openExisting(readOnly: true)
                for s in db.stats().namedSnapshots { print("\(s.name)\t\(s.bytes)\t\(s.unsharedBytes)") }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the snapshot named NAME.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The snapshot's name.") var name: String

        func run() throws { try store.changing { try $0.deleteSnapshot(named: name) } }
    }
}
