/**
 * Mutants of family 'admin': virtio-rng owning an administration virtqueue whose SR-IOV group has
 * two legacy members (test/unit/admin/admin-fixture.ts), with one rule of 2.12.1 or 2.13 removed:
 * an answer rewritten, a list kept or dropped across a reset, a chain handled another way.
 */

import type { Bdf } from '../../../../src/bus/pci-bus.js';
import type { DriverAuditSink } from '../../../../src/spec/driver-requirements.js';
import {
  adminInvalid,
  adminOk,
  readAdminCommand,
  writeAdminAnswer,
  type AdminAnswer,
  type AdminCommand,
} from '../../../../src/device/admin/admin-command.js';
import { AdminVirtqueue } from '../../../../src/device/admin/admin-virtqueue.js';
import type { LegacyInterface } from '../../../../src/device/admin/legacy-interface.js';
import { LegacyNotifyArea } from '../../../../src/device/admin/legacy-notify-area.js';
import { SriovGroup } from '../../../../src/device/admin/sriov-group.js';
import { writeChain } from '../../../../src/device/chain-bytes.js';
import { RngDevice } from '../../../../src/device/rng/rng-device.js';
import type { Machine } from '../../../../src/platform/machine.js';
import type { DescriptorChain, DeviceQueue } from '../../../../src/queue/types.js';
import {
  decodeCommandList,
  encodeCommandList,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ,
  VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
  VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  VIRTIO_ADMIN_CMD_LIST_QUERY,
  VIRTIO_ADMIN_CMD_LIST_USE,
  VIRTIO_ADMIN_GROUP_TYPE_SELF,
  VIRTIO_ADMIN_GROUP_TYPE_SRIOV,
  VIRTIO_ADMIN_STATUS_EINVAL,
  VIRTIO_ADMIN_STATUS_OK,
  VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND,
  VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD,
  VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP,
  VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER,
  VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE,
} from '../../../../src/spec/admin.js';
import { VIRTIO_PCI_STATUS } from '../../../../src/spec/virtio-pci.js';
import { makeMembers } from '../../admin/admin-fixture.js';
import type { Mutant, Mutants } from './mutant.js';

/** How a mutant's owner is built: the members' legacy interfaces, the group and the queue. */
interface Build {
  readonly members?: (legacy: LegacyInterface) => LegacyInterface;
  readonly group?: (members: readonly LegacyInterface[], area: LegacyNotifyArea) => SriovGroup;
  readonly admin?: (group: SriovGroup) => AdminVirtqueue;
}

/** The owner of `build` (ours when empty) on a fresh machine slot. */
function plugOwner(machine: Machine, build: Build = {}): Bdf {
  const members = makeMembers(2).map((m) => (build.members ?? ((l) => l))(m.fn.legacy!));
  // Ours publishes the members' notify addresses (LEGACY_NOTIFY_INFO) in BAR4.
  const area = new LegacyNotifyArea(members);
  const group = (build.group ?? ((ms, a) => new SriovGroup(ms, a)))(members, area);
  const admin = (build.admin ?? ((g) => new AdminVirtqueue({ groups: [g] })))(group);
  return machine.plugVirtio(new RngDevice(), { adminQueue: admin, legacyNotifyArea: area }).bdf;
}

function adminMutant(breaks: string, build: Build): Mutant {
  return { breaks, original: (m) => plugOwner(m), mutant: (m) => plugOwner(m, build) };
}

/** An administration queue whose answers `rewrite` changes after ours has answered. */
class Rewriting extends AdminVirtqueue {
  constructor(
    group: SriovGroup,
    private readonly rewrite: (command: AdminCommand, answer: AdminAnswer, self: Rewriting) => AdminAnswer,
  ) {
    super({ groups: [group] });
  }
  override execute(command: AdminCommand, audit?: DriverAuditSink): AdminAnswer {
    return this.rewrite(command, super.execute(command, audit), this);
  }
  /** Ours, without the rewrite. */
  plain(command: AdminCommand): AdminAnswer {
    return super.execute(command);
  }
}

const rewriting = (rewrite: ConstructorParameters<typeof Rewriting>[1]): Build => ({ admin: (g) => new Rewriting(g, rewrite) });

/** Answers with `qualifier` turned into `into`. */
const requalify = (qualifier: number, into: number): Build =>
  rewriting((_c, a) => (a.status === VIRTIO_ADMIN_STATUS_EINVAL && a.qualifier === qualifier ? adminInvalid(into) : a));

/** An administration queue whose chains `each` handles (ours: read, execute, answer). */
class ChainHandling extends AdminVirtqueue {
  constructor(
    group: SriovGroup,
    private readonly each: (chain: DescriptorChain, self: ChainHandling) => number,
  ) {
    super({ groups: [group] });
  }
  override serve(queue: DeviceQueue): boolean {
    let any = false;
    for (let chain = queue.pop(); chain; chain = queue.pop()) {
      queue.pushUsed(chain.head, this.each(chain, this));
      any = true;
    }
    return any;
  }
  /** Ours for one chain: its used length. */
  answer(chain: DescriptorChain, answer?: AdminAnswer): number {
    return writeAdminAnswer(chain, answer ?? this.execute(readAdminCommand(chain)));
  }
}

const chains = (each: ConstructorParameters<typeof ChainHandling>[1]): Build => ({ admin: (g) => new ChainHandling(g, each) });

/** Keeps the lists in use across a reset. */
class NoResetOfLists extends AdminVirtqueue {
  override reset(): void {}
}

/** Refuses a LIST_USE it completed in an earlier life (between resets). */
class ForgetsUsedLists extends AdminVirtqueue {
  private earlier = new Set<string>();
  private now = new Set<string>();
  override execute(command: AdminCommand, audit?: DriverAuditSink): AdminAnswer {
    const key = `${command.groupType}:${[...command.data].join(',')}`;
    if (command.opcode === VIRTIO_ADMIN_CMD_LIST_USE && this.earlier.has(key)) return adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD);
    const answer = super.execute(command, audit);
    if (command.opcode === VIRTIO_ADMIN_CMD_LIST_USE && answer.status === VIRTIO_ADMIN_STATUS_OK) this.now.add(key);
    return answer;
  }
  override reset(): void {
    super.reset();
    for (const key of this.now) this.earlier.add(key);
    this.now = new Set();
  }
}

/** Runs the SR-IOV group's commands whatever the list in use says. */
class IgnoresListInUse extends AdminVirtqueue {
  constructor(private readonly sriov: SriovGroup) {
    super({ groups: [sriov] });
  }
  override execute(command: AdminCommand, audit?: DriverAuditSink): AdminAnswer {
    const { sriov } = this;
    if (
      command.groupType === VIRTIO_ADMIN_GROUP_TYPE_SRIOV &&
      sriov.commands.includes(command.opcode) &&
      sriov.isMember(command.groupMemberId)
    )
      return sriov.execute(command);
    return super.execute(command, audit);
  }
}

/** The SR-IOV group without LEGACY_DEV_CFG_READ. */
class ThreeLegacyCommands extends SriovGroup {
  override readonly commands: readonly number[] = [
    VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
    VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
    VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
  ];
}

/** LEGACY_NOTIFY_INFO without LEGACY_DEV_CFG_READ. */
class NotifyInfoWithoutDevRead extends SriovGroup {
  override readonly commands: readonly number[] = [
    VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_WRITE,
    VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ,
    VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_WRITE,
    VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO,
  ];
}

/** LEGACY_NOTIFY_INFO's successful results with `edit` applied to entry 0 (bytes) and the whole result. */
const notifyInfoRewrite = (edit: (result: Uint8Array) => void): Build =>
  rewriting((c, a) => {
    if (c.opcode !== VIRTIO_ADMIN_CMD_LEGACY_NOTIFY_INFO || a.result === undefined) return a;
    const result = a.result.slice();
    edit(result);
    return adminOk(result);
  });

/** A member whose register at `offset` ignores writes, or reads 0. */
const brokenRegister =
  (offset: number, what: 'write' | 'read') =>
  (legacy: LegacyInterface): LegacyInterface => ({
    read: (o, s) => (what === 'read' && o === offset ? 0 : legacy.read(o, s)),
    write: (o, s, v) => (what === 'write' && o === offset ? undefined : legacy.write(o, s, v)),
    get deviceConfigOffset() {
      return legacy.deviceConfigOffset;
    },
    get deviceConfigSize() {
      return legacy.deviceConfigSize;
    },
  });

/** The list bits of `data` among the opcodes `supported`. */
const within = (data: Uint8Array, supported: readonly number[]): Uint8Array =>
  encodeCommandList(decodeCommandList(data).filter((op) => supported.includes(op)));

export const adminMutants: Mutants = {
  'admin/invalid-group': adminMutant(
    'an unknown group type answered Q_INVALID_OPCODE',
    requalify(VIRTIO_ADMIN_STATUS_Q_INVALID_GROUP, VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE),
  ),
  'admin/invalid-opcode': adminMutant(
    'an unsupported opcode answered Q_INVALID_COMMAND',
    requalify(VIRTIO_ADMIN_STATUS_Q_INVALID_OPCODE, VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND),
  ),
  'admin/invalid-member': adminMutant(
    'an unknown member answered Q_INVALID_FIELD',
    requalify(VIRTIO_ADMIN_STATUS_Q_INVALID_MEMBER, VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD),
  ),
  'admin/einval-no-side-effect': adminMutant(
    'a refused LIST_USE still puts its supported opcodes in use',
    rewriting((c, a, self) => {
      if (c.opcode === VIRTIO_ADMIN_CMD_LIST_USE && a.qualifier === VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD)
        self.plain({ ...c, data: within(c.data, [0, 1, 2, 3, 4, 5]) });
      return a;
    }),
  ),
  'admin/group-types-independent': adminMutant(
    'an SR-IOV LIST_USE sets the self group list too',
    rewriting((c, a, self) => {
      if (c.opcode === VIRTIO_ADMIN_CMD_LIST_USE && c.groupType === VIRTIO_ADMIN_GROUP_TYPE_SRIOV && a.status === VIRTIO_ADMIN_STATUS_OK)
        self.plain({ ...c, groupType: VIRTIO_ADMIN_GROUP_TYPE_SELF, data: within(c.data, [0, 1]) });
      return a;
    }),
  ),
  'admin/initial-list-after-reset': adminMutant('the lists in use survive a reset', { admin: (g) => new NoResetOfLists({ groups: [g] }) }),
  'admin/list-use-sets-list': adminMutant(
    'LIST_USE answers OK and changes nothing',
    rewriting((c, a) => (c.opcode === VIRTIO_ADMIN_CMD_LIST_USE ? adminOk() : a)),
  ),
  'admin/unlisted-command-refused': adminMutant('SR-IOV commands run without LIST_USE', { admin: (g) => new IgnoresListInUse(g) }),
  'admin/list-query-no-shrink': adminMutant(
    'LIST_QUERY reports only the list commands after its first two answers',
    (() => {
      let queries = 0;
      return rewriting((c, a) =>
        c.opcode === VIRTIO_ADMIN_CMD_LIST_QUERY && a.status === VIRTIO_ADMIN_STATUS_OK && ++queries > 2
          ? adminOk(encodeCommandList([0, 1]))
          : a,
      );
    })(),
  ),
  'admin/list-use-after-reset': adminMutant('a LIST_USE of an earlier life is refused', {
    admin: (g) => new ForgetsUsedLists({ groups: [g] }),
  }),
  'admin/legacy-all-or-none': adminMutant('LEGACY_DEV_CFG_READ missing from the four', { group: (ms) => new ThreeLegacyCommands(ms) }),
  'admin/legacy-single-field': adminMutant(
    'a legacy read across fields or past the configuration answered OK with zeros',
    rewriting((c, a) =>
      (c.opcode === VIRTIO_ADMIN_CMD_LEGACY_COMMON_CFG_READ || c.opcode === VIRTIO_ADMIN_CMD_LEGACY_DEV_CFG_READ) &&
      a.qualifier === VIRTIO_ADMIN_STATUS_Q_INVALID_FIELD
        ? adminOk(new Uint8Array(c.resultRoom))
        : a,
    ),
  ),
  'admin/legacy-common-write-effect': adminMutant("writes of the members' device status are dropped", {
    members: brokenRegister(VIRTIO_PCI_STATUS, 'write'),
  }),
  'admin/legacy-common-read-effect': adminMutant("the members' device status reads 0", {
    members: brokenRegister(VIRTIO_PCI_STATUS, 'read'),
  }),
  'admin/legacy-notify-info-needs-access': adminMutant('LEGACY_NOTIFY_INFO supported without LEGACY_DEV_CFG_READ', {
    group: (ms, area) => new NotifyInfoWithoutDevRead(ms, area),
  }),
  'admin/legacy-notify-info-end': adminMutant(
    'all four entries valid: no end-of-list entry',
    notifyInfoRewrite((r) => {
      for (let i = 1; i < 4; i++) r.copyWithin(i * 16, 0, 16);
    }),
  ),
  'admin/legacy-notify-info-bar': adminMutant(
    'the entry names BAR 3, which the owner does not implement',
    notifyInfoRewrite((r) => {
      r[1] = 3;
    }),
  ),
  'admin/legacy-notify-info-aligned': adminMutant(
    'the entry offset is odd',
    notifyInfoRewrite((r) => {
      r[8]! |= 1;
    }),
  ),
  'admin/vq-short-parts': adminMutant(
    'a readable part shorter than the 24-byte header is refused',
    chains((chain, self) =>
      chain.readableBytes < 24 ? self.answer(chain, adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND)) : self.answer(chain),
    ),
  ),
  'admin/vq-long-parts': adminMutant(
    'the whole writable part is written, the used length saying less',
    chains((chain, self) => {
      const len = self.answer(chain);
      writeChain(chain, len, new Uint8Array(chain.writableBytes - len));
      return len;
    }),
  ),
  'admin/vq-no-fail-on-length': adminMutant(
    'a writable part that is not a multiple of 8 bytes is refused',
    chains((chain, self) =>
      chain.writableBytes % 8 !== 0 ? self.answer(chain, adminInvalid(VIRTIO_ADMIN_STATUS_Q_INVALID_COMMAND)) : self.answer(chain),
    ),
  ),
  'admin/vq-initialize-status': adminMutant(
    'a refused command gets a used length of 0',
    chains((chain, self) => {
      const answer = self.execute(readAdminCommand(chain));
      const len = self.answer(chain, answer);
      return answer.status === VIRTIO_ADMIN_STATUS_OK ? len : 0;
    }),
  ),
  'admin/vq-in-order': adminMutant('commands made available together are served last first', {
    admin: (g) =>
      new (class extends AdminVirtqueue {
        override serve(queue: DeviceQueue): boolean {
          const popped: DescriptorChain[] = [];
          for (let chain = queue.pop(); chain; chain = queue.pop()) popped.push(chain);
          for (const chain of popped.reverse()) queue.pushUsed(chain.head, writeAdminAnswer(chain, this.execute(readAdminCommand(chain))));
          return popped.length > 0;
        }
      })({ groups: [g] }),
  }),
};
