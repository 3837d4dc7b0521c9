// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Slice",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SliceKV", targets: ["SliceKV"]),
        .library(name: "SliceFS", targets: ["SliceFS"]),
        .executable(name: "slice", targets: ["slice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // The etcd backend of SliceFS talks to etcd's v3 JSON gateway (see Sources/SliceFS/Etcd).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        // Micro-benchmarks only (Benchmarks/SliceMicro); the malloc interposer gives allocation counts.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Hardware CRC32C (SSE4.2) and other byte loops that Swift cannot express as fast.
        .target(name: "CSliceKV"),
        .target(
            name: "SliceKV",
            dependencies: [
                "CSliceKV", "CLZ4", "CZstd",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // Block compression: liblz4 and libzstd, found through pkg-config (Debian's -dev packages).
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // libfuse3, found through pkg-config (Debian: libfuse3-dev).
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        .target(
            name: "SliceFS",
            dependencies: [
                "SliceKV", "CFuse",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        .executableTarget(
            name: "slice",
            dependencies: [
                "SliceKV",
                "SliceFS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        // `swift package benchmark` (see BENCHMARKS.md): CRC32C, bloom, block, memtable, cache, WAL.
        .executableTarget(
            name: "SliceMicro",
            dependencies: ["SliceKV", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/SliceMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Test support for both test targets: recorded histories and the linearizability checker,
        // optimized in every build (a failing search of thousands of operations takes millions
        // of steps: about 10x faster than unoptimized).
        .target(name: "Linearizability", path: "Tests/Linearizability", swiftSettings: [.unsafeFlags(["-O"])]),
        // Fixtures: stores written by earlier formats, opened by the compatibility tests.
        .testTarget(
            name: "SliceKVTests", dependencies: ["SliceKV", "slice", "Linearizability"], exclude: ["Fixtures"]),
        .testTarget(name: "SliceFSTests", dependencies: ["SliceFS", "SliceKV", "CFuse", "slice", "Linearizability"]),
    ],
    swiftLanguageModes: [.v6]
)
