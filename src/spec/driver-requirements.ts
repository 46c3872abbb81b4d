/**
 * The driver-side normative statements of virtio 1.4 that our devices can watch a driver keep or
 * break (the driver audit, issue 14): one stable ID each, `<family>/<slug>` in the conformance
 * catalogue's family names, the spec section of the "Driver Requirements" subsection, the level and
 * a one-line paraphrase in our words. The device layers (transport, core, rings, device models)
 * record findings against these; the catalogue's driver-side entries refer to the same IDs.
 */

/** RFC 2119 levels as the spec uses them. */
export type RequirementLevel = 'MUST' | 'MUST NOT' | 'SHOULD' | 'SHOULD NOT';

/** One driver-side statement the audit can see broken. */
export interface DriverRequirement {
  /** Stable ID, `<family>/<slug>`; never reused for another statement. */
  readonly id: string;
  /** Spec 1.4 section of the driver requirements it comes from. */
  readonly section: string;
  readonly level: RequirementLevel;
  /** One line in our words. */
  readonly text: string;
}

function req(id: string, section: string, level: RequirementLevel, text: string): DriverRequirement {
  return { id, section, level, text };
}

/** Every audited driver statement, by a name for the code that records it. */
export const DRIVER_REQUIREMENTS = {
  // 2.1 device status, 3.1 initialisation
  statusNoClear: req(
    'status/no-clear',
    '2.1.1',
    'MUST NOT',
    'a status write never clears a bit the driver set earlier (only 0, a reset, clears)',
  ),
  statusResetAfterFailed: req(
    'status/reset-after-failed',
    '2.1.1',
    'MUST',
    'after setting FAILED the driver resets the device before initialising it again',
  ),
  initResetFirst: req('initialization/reset-first', '3.1.1', 'MUST', 'initialisation starts with a device reset'),
  initStatusOrder: req(
    'initialization/status-order',
    '3.1.1',
    'MUST',
    'ACKNOWLEDGE, DRIVER, FEATURES_OK and DRIVER_OK are set in that order, each once the previous is set',
  ),
  initNoConfigWrite: req(
    'initialization/no-config-write-before-features-ok',
    '3.1.1',
    'MUST NOT',
    'device-specific configuration is not written before FEATURES_OK (reading it is allowed)',
  ),
  initNoNewFeatures: req(
    'initialization/no-new-features-after-features-ok',
    '3.1.1',
    'MUST NOT',
    'no feature bit is accepted after FEATURES_OK is set',
  ),
  initQueueSetupState: req(
    'initialization/queue-setup-state',
    '3.1.1',
    'MUST',
    'virtqueues are set up after FEATURES_OK and before DRIVER_OK (or after a virtqueue reset)',
  ),
  initNoNotifyBeforeDriverOk: req(
    'initialization/no-notify-before-driver-ok',
    '3.1.1',
    'MUST NOT',
    'no available buffer notification before DRIVER_OK',
  ),
  cleanupExposedBuffers: req(
    'initialization/exposed-buffers-unchanged',
    '3.3.1',
    'MUST NOT',
    'ring entries of buffers made available on a live queue are not changed until the device used them',
  ),
  // 3.4 device suspend (VIRTIO_F_SUSPEND)
  suspendWhenLive: req(
    'status/suspend-when-live',
    '3.4.1',
    'SHOULD NOT',
    'SUSPEND is set only with VIRTIO_F_SUSPEND negotiated and DRIVER_OK set',
  ),
  suspendNoNotify: req('status/suspend-no-notify', '3.4.1', 'MUST NOT', 'no available buffer notification once SUSPEND is set'),
  suspendNoConfigWrite: req(
    'status/suspend-no-config-write',
    '3.4.1',
    'MUST NOT',
    'once SUSPEND is set, nothing in the configuration structures but device status is written (queue fields, device configuration)',
  ),
  // 2.2 feature bits, 6 reserved feature bits
  featuresOnlyOffered: req('features/only-offered', '2.2.1', 'MUST NOT', 'a feature the device did not offer is not accepted'),
  featuresDependencies: req('features/dependencies', '2.2.1', 'MUST NOT', 'a feature is not accepted without the features it requires'),
  featuresVersion1: req('features/accept-version-1', '6.1', 'MUST', 'VIRTIO_F_VERSION_1 is accepted when offered'),
  // 2.5 device configuration
  configGenerationLoop: req(
    'device-config/generation-loop',
    '2.5.1',
    'SHOULD',
    'reads of several configuration fields (or parts of one) sit between two config_generation reads',
  ),
  // 4.1.4.3 common configuration
  commonReadOnly: req(
    'pci-common-cfg/read-only-fields',
    '4.1.4.3.2',
    'MUST NOT',
    'device_feature, num_queues, config_generation, queue_notify_off and queue_notif_config_data are not written',
  ),
  commonQueueSizePow2: req(
    'pci-common-cfg/queue-size-power-of-2',
    '4.1.4.3.2',
    'MUST NOT',
    'without VIRTIO_F_RING_PACKED, queue_size is written only with a power of 2',
  ),
  commonQueueSizeNonzero: req(
    'pci-common-cfg/queue-size-nonzero',
    '4.1.4.3.2',
    'MUST NOT',
    'with VIRTIO_F_RING_PACKED, queue_size is never written 0',
  ),
  commonConfigureBeforeEnable: req(
    'pci-common-cfg/configure-before-enable',
    '4.1.4.3.2',
    'MUST',
    'the other queue fields are set before queue_enable (and not changed after)',
  ),
  commonQueueEnableZero: req('pci-common-cfg/queue-enable-zero', '4.1.4.3.2', 'MUST NOT', 'queue_enable is never written 0'),
  commonResetWait: req(
    'pci-common-cfg/reset-wait',
    '4.1.4.3.2',
    'MUST',
    'after writing 0 to device_status the driver reads 0 back before initialising again',
  ),
  commonQueueResetWait: req(
    'pci-common-cfg/queue-reset-wait',
    '4.1.4.3.2',
    'MUST NOT',
    'after writing 1 to queue_reset the driver does not take the reset as done (enable the queue again) before it reads 0 back',
  ),
  commonAdminQueueRange: req(
    'pci-common-cfg/driver-admin-queue-range',
    '4.1.4.3.2',
    'MUST',
    'With VIRTIO_F_ADMIN_VQ, the driver sets up administration queues only at indices admin_queue_index .. admin_queue_index + admin_queue_num - 1.',
  ),
  // 4.1.5.2 notifications
  notifyWidth: req('pci-notify/width', '4.1.5.2.1', 'MUST', 'a notification is a 16-bit write (32-bit with VIRTIO_F_NOTIFICATION_DATA)'),
  notifyValue: req(
    'pci-notify/value',
    '4.1.5.2.1',
    'MUST',
    'the notification names the notified queue: its index, or its queue_notif_config_data',
  ),
  // 4.1.5.1.2 MSI-X
  msixVectorInTable: req(
    'pci-msix/vector-in-table',
    '4.1.5.1.2.2',
    'MUST NOT',
    'no event is mapped to a vector beyond the MSI-X table size',
  ),
  msixVerifyVector: req(
    'pci-msix/verify-vector',
    '4.1.5.1.2.2',
    'MUST',
    'after mapping an event to a vector the driver reads the vector field back',
  ),
  // 4.1.4.1 virtio structure capabilities
  pciNoCapWrites: req(
    'pci-capabilities/driver-no-cap-writes',
    '4.1.4.1',
    'MUST NOT',
    'The driver writes no field of a virtio capability except those of VIRTIO_PCI_CAP_PCI_CFG.',
  ),
  // 4.1.4.10 legacy interface
  legacyOneInterface: req(
    'pci-legacy/one-interface',
    '4.1.4.10',
    'MUST',
    'a driver on the legacy interface uses the BAR0 header, not the modern structures (and the reverse)',
  ),
  legacyReadOnly: req(
    'pci-legacy/read-only-registers',
    '4.1.4.10',
    'MUST NOT',
    'the read-only legacy registers (host features, queue size, ISR) are not written',
  ),
  // 2.7 split rings
  splitAlignment: req(
    'split-ring/alignment',
    '2.7.1',
    'MUST',
    'each part of a split ring starts at its alignment (16, 2, 4) inside guest memory',
  ),
  splitFraming: req(
    'split-ring/writable-after-readable',
    '2.7.4.2',
    'MUST',
    'device-writable descriptors come after every device-readable one in a chain',
  ),
  splitChainLength: req('split-ring/chain-length', '2.7.5.3.1', 'MUST NOT', 'no chain is longer than the queue size (so no loops)'),
  splitIndirectNegotiated: req(
    'split-ring/indirect-negotiated',
    '2.7.5.3.1',
    'MUST NOT',
    'VIRTQ_DESC_F_INDIRECT only with VIRTIO_F_INDIRECT_DESC negotiated',
  ),
  splitIndirectNested: req('split-ring/indirect-nested', '2.7.5.3.1', 'MUST NOT', 'no VIRTQ_DESC_F_INDIRECT inside an indirect table'),
  splitIndirectNext: req(
    'split-ring/indirect-and-next',
    '2.7.5.3.1',
    'MUST NOT',
    'VIRTQ_DESC_F_INDIRECT and VIRTQ_DESC_F_NEXT are not set together',
  ),
  splitAvailIdx: req(
    'split-ring/avail-idx',
    '2.7.6.1',
    'MUST NOT',
    'the available idx never goes back (and so never runs more than the queue size ahead)',
  ),
  // 2.8 packed rings
  packedAlignment: req(
    'packed-ring/alignment',
    '2.8.11',
    'MUST',
    'each part of a packed ring starts at its alignment (16, 4, 4) inside guest memory',
  ),
  packedFraming: req(
    'packed-ring/writable-after-readable',
    '2.8.17',
    'MUST',
    'device-writable elements come after every device-readable one in a descriptor list',
  ),
  packedChainLength: req('packed-ring/chain-length', '2.8.17', 'MUST NOT', 'no descriptor list is longer than the queue size'),
  packedIndirectNegotiated: req(
    'packed-ring/indirect-negotiated',
    '2.8.19',
    'MUST NOT',
    'VIRTQ_DESC_F_INDIRECT only with VIRTIO_F_INDIRECT_DESC negotiated',
  ),
  packedIndirectFlags: req(
    'packed-ring/indirect-flags',
    '2.8.19',
    'MUST NOT',
    'descriptors inside an indirect table carry no flag but VIRTQ_DESC_F_WRITE',
  ),
  packedIndirectInList: req(
    'packed-ring/indirect-in-list',
    '2.8.19',
    'MUST NOT',
    'no VIRTQ_DESC_F_INDIRECT descriptor in a list linked by VIRTQ_DESC_F_NEXT',
  ),
  // 5.1 net
  netNoConfigWrite: req('net/no-config-write', '5.1.4.2', 'MUST NOT', 'the network device configuration is never written'),
  netCtrlRx: req(
    'net/ctrl-rx-negotiated',
    '5.1.9.5.1.2',
    'MUST NOT',
    'PROMISC and ALLMULTI commands only with VIRTIO_NET_F_CTRL_RX negotiated',
  ),
  netCtrlRxExtra: req(
    'net/ctrl-rx-extra-negotiated',
    '5.1.9.5.1.2',
    'MUST NOT',
    'ALLUNI, NOMULTI, NOUNI and NOBCAST commands only with VIRTIO_NET_F_CTRL_RX_EXTRA negotiated',
  ),
  netCtrlMac: req(
    'net/ctrl-mac-negotiated',
    '5.1.9.5.2.2',
    'MUST NOT',
    'VIRTIO_NET_CTRL_MAC commands only with VIRTIO_NET_F_CTRL_RX negotiated',
  ),
  // 5.2 blk
  blkWithinCapacity: req('blk/within-capacity', '5.2.6.1', 'MUST NOT', 'no request reads or writes past capacity'),
  blkSectorMultiple: req('blk/data-sector-multiple', '5.2.6.1', 'MUST', 'IN and OUT data lengths are multiples of 512 bytes'),
  // 5.3 console, 5.4 entropy
  consoleBufferDirection: req(
    'console/buffer-direction',
    '5.3.6.1',
    'MUST NOT',
    'no device-readable buffer in a receiveq, no device-writable buffer in a transmitq',
  ),
  entropyWritableOnly: req('entropy/writable-only', '5.4.6.1', 'MUST NOT', 'no device-readable buffer in the requestq'),
  // 2.12.1 group administration commands (administration virtqueue)
  adminListUseFirst: req(
    'admin/list-use-first',
    '2.12.1.6',
    'MUST',
    'no group administration command but LIST_QUERY and LIST_USE before a LIST_USE that names it completed with OK',
  ),
  adminListUseAlone: req(
    'admin/list-use-alone',
    '2.12.1.6',
    'MUST NOT',
    'LIST_USE is not issued while another administration command is outstanding',
  ),
  adminListUseQueried: req(
    'admin/list-use-queried',
    '2.12.1.6',
    'MUST NOT',
    'LIST_USE names only commands LIST_QUERY reported as supported for that group type',
  ),
  adminSriovMember: req('admin/sriov-member-range', '2.12.1.6', 'MUST', 'an SR-IOV group command names a member between 1 and NumVFs'),
} as const satisfies Record<string, DriverRequirement>;

/** The name of an audited statement in {@link DRIVER_REQUIREMENTS}. */
export type DriverRequirementName = keyof typeof DRIVER_REQUIREMENTS;

/**
 * Where the audit's findings go: the device layers call it with the statement broken and what the
 * driver did (`detail`), only when auditing is on (a device without a sink pays nothing).
 */
export type DriverAuditSink = (requirement: DriverRequirement, detail: string) => void;
