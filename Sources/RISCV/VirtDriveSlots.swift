// How many disks a machine type takes: one per virtio-mmio transport it lists (virt-1.2 on).
import EmulatorCore

extension VirtMachineTypes {
    /// The drives `type` can hold (`MachineConfiguration.drives`); 0 for types without virtio-mmio.
    public static func driveSlots(in type: MachineType) -> Int {
        type.devices.filter { ObjectIdentifier($0.deviceType) == ObjectIdentifier(VirtioMMIO.self) }.count
    }
}
