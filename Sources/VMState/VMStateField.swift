// One entry of a state description: QEMU's VMStateField, built from a key path
// into the device's `State` value instead of a C offsetof(). Each factory below
// corresponds to a VMSTATE_* macro family in include/migration/vmstate.h.

public typealias VMStateFieldExists<State> = @Sendable (_ state: State, _ versionID: Int) -> Bool

public struct VMStateField<State>: Sendable {
    /// The name in dumps and in VMDESCRIPTION (QEMU: the C field expression).
    public let name: String
    /// QEMU's VMStateInfo name ("uint32", "bool", "buffer", "struct", …); analyze-migration.py
    /// picks its decoder by it.
    public let typeName: String
    /// `-dump-vmstate`'s "size": element size of arrays, byte count of buffers, wire size of structs.
    public let size: Int
    /// Element count of integer and struct arrays (VMDESCRIPTION's "array_len").
    public let arrayLength: Int?
    /// QEMU's field version_id: the description version the field arrived in.
    public let sinceVersion: Int
    /// QEMU's field_exists test.
    public let exists: VMStateFieldExists<State>?
    /// The description of a nested struct field (VMSTATE_STRUCT).
    public let nested: AnyVMStateDescription?
    /// The stored property of `State` the key path starts at, for the coverage check.
    let rootProperty: String?

    typealias SaveBody = @Sendable (_ state: State, _ out: QEMUFileWriter, _ context: FieldContext) throws -> [JSONValue]
    typealias LoadBody = @Sendable (_ state: inout State, _ in: QEMUFileReader, _ context: FieldContext) throws -> Void
    let saveBody: SaveBody
    let loadBody: LoadBody

    /// QEMU's rule (vmstate_load_state/vmstate_save_state) plus: `since` and `exists` both hold.
    func isPresent(_ state: State, versionID: Int) -> Bool {
        sinceVersion <= versionID && (exists?(state, versionID) ?? true)
    }
}

/// Which device, version and field is being handled, for error texts.
struct FieldContext {
    let device: String
    let versionID: Int
    let field: String
}

extension VMStateField {
    init(
        name: String?, path: String?, typeName: String, size: Int, arrayLength: Int? = nil,
        since: Int, exists: VMStateFieldExists<State>?, nested: AnyVMStateDescription? = nil,
        save: @escaping SaveBody, load: @escaping LoadBody
    ) {
        self.name = name ?? path ?? ""
        self.typeName = typeName
        self.size = size
        self.arrayLength = arrayLength
        self.sinceVersion = since
        self.exists = exists
        self.nested = nested
        self.rootProperty = path.map { String($0.prefix { $0 != "." }) }
        self.saveBody = save
        self.loadBody = load
    }

    /// "\State.inner.z" → "inner.z": the field's default name, as QEMU names fields by their C path.
    static func propertyPath<Value>(_ keyPath: KeyPath<State, Value>) -> String? {
        // debugDescription itself, not String(describing:): that first asks the runtime whether
        // the key path's type is TextOutputStreamable or CustomStringConvertible, a scan of every
        // conformance record per new type, which was most of building the board's descriptions
        // (and so of `emupanel run`'s start-up).
        let text = keyPath.debugDescription
        let prefix = "\\" + String(describing: State.self) + "."
        guard text.hasPrefix(prefix) else { return nil }
        // A computed property prints as "<computed …>": the stored part before it is the path
        // (`\.x.values` covers the stored `x`).
        let stored = text.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
            .prefix { !$0.contains("<") && !$0.isEmpty }
        return stored.isEmpty ? nil : stored.joined(separator: ".")
    }

    static func entry(_ name: String, _ type: String, _ size: Int, arrayLength: Int? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [("name", .string(name))]
        if let arrayLength { members.append(("array_len", .int(Int64(arrayLength)))) }
        members.append(("type", .string(type)))
        members.append(("size", .int(Int64(size))))
        return .object(members)
    }

    // MARK: Integers and bools (VMSTATE_UINT8 … VMSTATE_INT64, VMSTATE_BOOL)

    static func integer<T: FixedWidthInteger & Sendable>(
        _ keyPath: WritableKeyPath<State, T> & Sendable, type: String, name: String?, since: Int,
        exists: VMStateFieldExists<State>?
    ) -> Self {
        let size = MemoryLayout<T>.size
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: type, size: size, since: since, exists: exists,
            save: { state, out, _ in
                try out.putBE(state[keyPath: keyPath])
                return [entry(fieldName, type, size)]
            },
            load: { state, input, _ in state[keyPath: keyPath] = try input.getBE(T.self) })
    }

    public static func uint8(
        _ keyPath: WritableKeyPath<State, UInt8> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "uint8", name: name, since: since, exists: exists)
    }
    public static func uint16(
        _ keyPath: WritableKeyPath<State, UInt16> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "uint16", name: name, since: since, exists: exists)
    }
    public static func uint32(
        _ keyPath: WritableKeyPath<State, UInt32> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "uint32", name: name, since: since, exists: exists)
    }
    public static func uint64(
        _ keyPath: WritableKeyPath<State, UInt64> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "uint64", name: name, since: since, exists: exists)
    }
    public static func int32(
        _ keyPath: WritableKeyPath<State, Int32> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "int32", name: name, since: since, exists: exists)
    }
    public static func int64(
        _ keyPath: WritableKeyPath<State, Int64> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integer(keyPath, type: "int64", name: name, since: since, exists: exists)
    }

    /// An enum kept as its one-byte raw value (a privilege mode); a value no case has fails the load.
    public static func uint8<R: RawRepresentable & Sendable>(
        _ keyPath: WritableKeyPath<State, R> & Sendable, name: String? = nil, since: Int = 0,
        exists: VMStateFieldExists<State>? = nil
    ) -> Self where R.RawValue == UInt8 {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "uint8", size: 1, since: since, exists: exists,
            save: { state, out, _ in
                try out.putByte(state[keyPath: keyPath].rawValue)
                return [entry(fieldName, "uint8", 1)]
            },
            load: { state, input, context in
                let raw = try input.getByte()
                guard let value = R(rawValue: raw) else {
                    throw VMStateError.invalidValue(
                        device: context.device, version: context.versionID, field: fieldName,
                        reason: "\(raw) is not a valid \(R.self)")
                }
                state[keyPath: keyPath] = value
            })
    }

    /// One byte on the wire; like QEMU's get_bool any non-zero byte loads as true.
    public static func bool(
        _ keyPath: WritableKeyPath<State, Bool> & Sendable, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "bool", size: 1, since: since, exists: exists,
            save: { state, out, _ in
                try out.putByte(state[keyPath: keyPath] ? 1 : 0)
                return [entry(fieldName, "bool", 1)]
            },
            load: { state, input, _ in state[keyPath: keyPath] = try input.getByte() != 0 })
    }

    // MARK: Arrays of integers (VMSTATE_UINT32_ARRAY …)

    static func integerArray<T: FixedWidthInteger & Sendable>(
        _ keyPath: WritableKeyPath<State, [T]> & Sendable, count: Int, type: String, name: String?,
        since: Int, exists: VMStateFieldExists<State>?
    ) -> Self {
        let size = MemoryLayout<T>.size
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: type, size: size, arrayLength: count, since: since,
            exists: exists,
            save: { state, out, context in
                let values = state[keyPath: keyPath]
                guard values.count == count else {
                    throw VMStateError.fieldSizeMismatch(
                        device: context.device, version: context.versionID,
                        field: fieldName, expected: count, actual: values.count)
                }
                for value in values { try out.putBE(value) }
                return [entry(fieldName, type, size, arrayLength: count)]
            },
            load: { state, input, _ in
                var values = [T]()
                values.reserveCapacity(count)
                for _ in 0..<count { values.append(try input.getBE(T.self)) }
                state[keyPath: keyPath] = values
            })
    }

    public static func uint8Array(
        _ keyPath: WritableKeyPath<State, [UInt8]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "uint8", name: name, since: since, exists: exists)
    }
    public static func uint16Array(
        _ keyPath: WritableKeyPath<State, [UInt16]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "uint16", name: name, since: since, exists: exists)
    }
    public static func uint32Array(
        _ keyPath: WritableKeyPath<State, [UInt32]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "uint32", name: name, since: since, exists: exists)
    }
    public static func uint64Array(
        _ keyPath: WritableKeyPath<State, [UInt64]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "uint64", name: name, since: since, exists: exists)
    }
    public static func int32Array(
        _ keyPath: WritableKeyPath<State, [Int32]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "int32", name: name, since: since, exists: exists)
    }
    public static func int64Array(
        _ keyPath: WritableKeyPath<State, [Int64]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        integerArray(keyPath, count: count, type: "int64", name: name, since: since, exists: exists)
    }

    // MARK: Buffers (VMSTATE_BUFFER, VMSTATE_VBUFFER_UINT32, VMSTATE_UNUSED)

    /// A fixed-size byte buffer, e.g. a FIFO's storage.
    public static func bytes(
        _ keyPath: WritableKeyPath<State, [UInt8]> & Sendable, count: Int, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "buffer", size: count, since: since, exists: exists,
            save: { state, out, context in
                let bytes = state[keyPath: keyPath]
                guard bytes.count == count else {
                    throw VMStateError.fieldSizeMismatch(
                        device: context.device, version: context.versionID,
                        field: fieldName, expected: count, actual: bytes.count)
                }
                try out.put(bytes)
                return [entry(fieldName, "buffer", count)]
            },
            load: { state, input, _ in state[keyPath: keyPath] = try input.getBytes(count) })
    }

    /// A buffer whose length travels in an earlier integer field (`length`), bounded by
    /// `maximum` so that a hostile length never sizes an allocation.
    public static func vbuffer<L: FixedWidthInteger & Sendable>(
        _ keyPath: WritableKeyPath<State, [UInt8]> & Sendable, length: KeyPath<State, L> & Sendable, maximum: Int,
        name: String? = nil, since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "buffer", size: 0, since: since, exists: exists,
            save: { state, out, context in
                let bytes = state[keyPath: keyPath]
                let declared = state[keyPath: length]
                guard declared >= 0, UInt64(declared) == UInt64(bytes.count) else {
                    throw VMStateError.fieldSizeMismatch(
                        device: context.device, version: context.versionID,
                        field: fieldName, expected: Int(clamping: declared),
                        actual: bytes.count)
                }
                guard bytes.count <= maximum else {
                    throw VMStateError.lengthOutOfBounds(
                        device: context.device, version: context.versionID,
                        field: fieldName, length: UInt64(bytes.count),
                        maximum: maximum)
                }
                try out.put(bytes)
                return [entry(fieldName, "buffer", bytes.count)]
            },
            load: { state, input, context in
                let declared = state[keyPath: length]
                guard declared >= 0, UInt64(declared) <= UInt64(maximum) else {
                    throw VMStateError.lengthOutOfBounds(
                        device: context.device, version: context.versionID,
                        field: fieldName, length: UInt64(truncatingIfNeeded: declared),
                        maximum: maximum)
                }
                state[keyPath: keyPath] = try input.getBytes(Int(declared))
            })
    }

    /// Bytes a removed field used to occupy; kept so the wire layout stays (VMSTATE_UNUSED).
    public static func unused(_ count: Int, since: Int = 0, exists: VMStateFieldExists<State>? = nil) -> Self {
        Self(
            name: "unused", path: nil, typeName: "unused_buffer", size: count, since: since, exists: exists,
            save: { _, out, _ in
                try out.put([UInt8](repeating: 0, count: count))
                return [entry("unused", "unused_buffer", count)]
            },
            load: { _, input, _ in try input.skip(UInt64(count)) })
    }

    // MARK: Nested descriptions (VMSTATE_STRUCT, VMSTATE_STRUCT_ARRAY)

    /// A value described by its own description, saved inline with its own subsections.
    /// As in QEMU, its version is not on the wire: it loads at its own `versionID`.
    public static func nested<Inner>(
        _ keyPath: WritableKeyPath<State, Inner> & Sendable,
        _ description: VMStateDescription<Inner>, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "struct", size: description.staticSize, since: since,
            exists: exists, nested: AnyVMStateDescription(description),
            save: { state, out, _ in
                let before = out.bytesWritten
                let inner = try description.save(state[keyPath: keyPath], to: out)
                return [
                    .object([
                        ("name", .string(fieldName)), ("type", .string("struct")), ("struct", inner),
                        ("size", .int(Int64(out.bytesWritten - before))),
                    ])
                ]
            },
            load: { state, input, _ in
                try description.load(
                    &state[keyPath: keyPath], from: input,
                    versionID: description.versionID, enclosed: true)
            })
    }

    /// A fixed-length array of described values (e.g. one entry per PMP region).
    /// VMDESCRIPTION lists each element, as elements may carry different subsections.
    public static func nestedArray<Inner>(
        _ keyPath: WritableKeyPath<State, [Inner]> & Sendable, count: Int,
        _ description: VMStateDescription<Inner>, name: String? = nil,
        since: Int = 0, exists: VMStateFieldExists<State>? = nil
    ) -> Self {
        let path = propertyPath(keyPath)
        let fieldName = name ?? path ?? ""
        return Self(
            name: name, path: path, typeName: "struct", size: description.staticSize, arrayLength: count,
            since: since, exists: exists, nested: AnyVMStateDescription(description),
            save: { state, out, context in
                let elements = state[keyPath: keyPath]
                guard elements.count == count else {
                    throw VMStateError.fieldSizeMismatch(
                        device: context.device, version: context.versionID,
                        field: fieldName, expected: count, actual: elements.count)
                }
                return try elements.map { element in
                    let before = out.bytesWritten
                    let inner = try description.save(element, to: out)
                    return .object([
                        ("name", .string(fieldName)), ("type", .string("struct")), ("struct", inner),
                        ("size", .int(Int64(out.bytesWritten - before))),
                    ])
                }
            },
            load: { state, input, context in
                var elements = state[keyPath: keyPath]
                guard elements.count == count else {
                    throw VMStateError.fieldSizeMismatch(
                        device: context.device, version: context.versionID,
                        field: fieldName, expected: count, actual: elements.count)
                }
                for i in 0..<count {
                    try description.load(
                        &elements[i], from: input, versionID: description.versionID,
                        enclosed: true)
                }
                state[keyPath: keyPath] = elements
            })
    }
}
