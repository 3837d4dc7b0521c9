import Foundation

/// The requests and replies of etcd's v3 JSON gateway that the etcd backend uses, as
/// `Codable` values. They mirror etcd's `rpc.proto` (`etcdserverpb`): the gateway takes and
/// gives the same messages in JSON, with `bytes` fields in base64 and 64-bit integers as
/// strings. Field names are the proto names (snake_case); the coders convert.
enum Etcd {
    /// A `bytes` field: base64 in JSON.
    struct Bytes: Codable, Hashable {
        var bytes: [UInt8]

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        init(from decoder: any Decoder) throws {
            let s = try decoder.singleValueContainer().decode(String.self)
            guard let d = Data(base64Encoded: s) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not base64"))
            }
            bytes = [UInt8](d)
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(Data(bytes).base64EncodedString())
        }
    }

    /// An `int64` field: a string in the gateway's JSON (a number is accepted too).
    struct Int64Value: Codable, Hashable {
        var value: Int64

        init(_ value: Int64) { self.value = value }

        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self), let v = Int64(s) {
                value = v
            } else {
                value = try c.decode(Int64.self)
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(String(value))
        }
    }

    struct ResponseHeader: Codable {
        var revision: Int64Value?
        var memberId: String?
        var raftTerm: Int64Value?
    }

    struct KeyValue: Codable {
        var key: Bytes
        var value: Bytes?
        var modRevision: Int64Value?
        var version: Int64Value?
    }

    struct RangeRequest: Codable {
        var key: Bytes
        var rangeEnd: Bytes?
        var limit: Int64Value?
        /// Read at this revision (0 or nil: the newest).
        var revision: Int64Value?
        var keysOnly: Bool?
        var countOnly: Bool?
    }

    struct RangeResponse: Codable {
        var header: ResponseHeader?
        var kvs: [KeyValue]?
        var more: Bool?
        var count: Int64Value?
    }

    struct PutRequest: Codable {
        var key: Bytes
        var value: Bytes
        var lease: Int64Value?
    }

    struct DeleteRangeRequest: Codable {
        var key: Bytes
        var rangeEnd: Bytes?
    }

    struct Compare: Codable {
        enum Result: String, Codable { case EQUAL, GREATER, LESS, NOT_EQUAL }
        enum Target: String, Codable { case VERSION, CREATE, MOD, VALUE }
        var key: Bytes
        var result: Result
        var target: Target
        var version: Int64Value?
        var modRevision: Int64Value?
    }

    struct RequestOp: Codable {
        var requestPut: PutRequest?
        var requestDeleteRange: DeleteRangeRequest?
        var requestRange: RangeRequest?
    }

    struct TxnRequest: Codable {
        var compare: [Compare] = []
        var success: [RequestOp] = []
        var failure: [RequestOp] = []
    }

    struct ResponseOp: Codable {
        var responseRange: RangeResponse?
    }

    struct TxnResponse: Codable {
        var header: ResponseHeader?
        var succeeded: Bool?
        var responses: [ResponseOp]?
    }

    struct CompactionRequest: Codable {
        var revision: Int64Value
        var physical: Bool?
    }

    struct Empty: Codable {}

    struct StatusResponse: Codable {
        var header: ResponseHeader?
        var version: String?
        var dbSize: Int64Value?
        var dbSizeInUse: Int64Value?
        var leader: String?
        var raftIndex: Int64Value?
        var raftTerm: Int64Value?
        var errors: [String]?
    }

    struct WatchCreateRequest: Codable {
        var key: Bytes
        var rangeEnd: Bytes?
        var startRevision: Int64Value?
        var progressNotify: Bool?
    }

    struct WatchRequest: Codable {
        var createRequest: WatchCreateRequest
    }

    struct Event: Codable {
        /// Absent for a put (the enum's zero value is omitted), "DELETE" for a delete.
        var type: String?
        var kv: KeyValue
    }

    struct WatchResponse: Codable {
        var header: ResponseHeader?
        var created: Bool?
        var canceled: Bool?
        var compactRevision: Int64Value?
        var cancelReason: String?
        var events: [Event]?
    }

    /// One message of the watch stream: `{"result": …}` or `{"error": …}`.
    struct WatchStreamMessage: Codable {
        var result: WatchResponse?
        var error: GatewayError?
    }

    /// The gateway's answer to a failed call (HTTP status other than 200).
    struct GatewayError: Codable {
        var error: String?
        var code: Int?
        var message: String?
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}
