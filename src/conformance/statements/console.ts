/** Family 'console' (spec 5.3, 1.4 numbering): emerg_wr and the multiport control messages. */

import {
  VIRTIO_CONSOLE_CONFIG_EMERG_WR,
  VIRTIO_CONSOLE_DEVICE_ADD,
  VIRTIO_CONSOLE_DEVICE_READY,
  VIRTIO_CONSOLE_DEVICE_REMOVE,
  VIRTIO_CONSOLE_F_EMERG_WRITE,
  VIRTIO_CONSOLE_F_MULTIPORT,
} from '../../spec/console.js';
import { ConformanceViolation } from '../../errors.js';
import { VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET } from '../../spec/status.js';
import type { Check, Statement } from '../statement.js';
import { deviceStatements, driverStatements } from './define.js';
import { need, needsOffered } from '../exchange.js';
import {
  closeControl,
  collectControl,
  consoleControl,
  describeMessages,
  sendControl,
  type ConsoleControl,
  type ControlMessage,
} from './console-control.js';
import { auditedStatement, DRIVER_OWN_STATE, NO_DEADLINE, NOT_AUDITED_YET } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const device = deviceStatements('console');
const driver = driverStatements('console');

/**
 * A multiport check: the device's messages after one DEVICE_READY (and, with `twice`, after a
 * second one), judged by `judge` (undefined when they conform, else what is wrong).
 */
function afterReady(judge: (messages: readonly ControlMessage[], target: ConsoleControl) => string | undefined, twice = false): Check {
  return {
    applies: (ctx) => needsOffered(ctx, VIRTIO_CONSOLE_F_MULTIPORT, 'MULTIPORT'),
    async run(ctx) {
      const target = await consoleControl(ctx);
      const ready = (): Promise<void> => sendControl(target, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
      const messages = await collectControl(target, ready);
      if (twice) messages.push(...(await collectControl(target, ready)));
      await closeControl(target);
      ctx.note(`max_nr_ports ${target.maxNrPorts}; messages ${describeMessages(messages)}`);
      const wrong = judge(messages, target);
      need(ctx, wrong === undefined, `${wrong}; messages ${describeMessages(messages)}`);
    },
  };
}

/** The first DEVICE_ADD of a port already added, as a complaint. */
function readded(messages: readonly ControlMessage[]): string | undefined {
  const added = new Set<number>();
  for (const m of messages) {
    if (m.event !== VIRTIO_CONSOLE_DEVICE_ADD) continue;
    if (added.has(m.id)) return `port ${m.id} added again`;
    added.add(m.id);
  }
  return undefined;
}

/** Family 'console' (see Family in ../statement.ts): spec 5.3, 1.4 numbering. */
export const consoleStatements: readonly Statement[] = [
  device(
    'emerg-wr-unconfigured',
    '5.3.5.1',
    'MUST',
    'With VIRTIO_CONSOLE_F_EMERG_WRITE, a write to emerg_wr is allowed on an unconfigured device (it does not break it).',
    {
      check: {
        applies: (ctx) => needsOffered(ctx, VIRTIO_CONSOLE_F_EMERG_WRITE, 'EMERG_WRITE'),
        async run(ctx) {
          const transport = await ctx.transport();
          await transport.reset();
          await transport.writeConfig(VIRTIO_CONSOLE_CONFIG_EMERG_WR, 4, 0x21);
          const status = await transport.getStatus();
          need(
            ctx,
            (status & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0,
            `device status 0x${status.toString(16)} after an emerg_wr write before initialisation`,
          );
          // ...and the device still initialises.
          let after: number;
          try {
            const driver = await ctx.openDriver({ ring: 'split' });
            await driver.negotiate(0n);
            await driver.driverOk();
            after = await driver.transport.getStatus();
          } catch (error) {
            if (error instanceof ConformanceViolation) throw error;
            return need(
              ctx,
              false,
              `initialisation after an early emerg_wr write failed: ${error instanceof Error ? error.message : String(error)}`,
            );
          }
          need(
            ctx,
            (after & VIRTIO_CONFIG_S_DEVICE_NEEDS_RESET) === 0,
            `device status 0x${after.toString(16)} at DRIVER_OK after an early emerg_wr write`,
          );
        },
      },
    },
  ),
  device('emerg-wr-output', '5.3.5.1', 'SHOULD', 'The low byte written to emerg_wr goes to a log or output.', {
    uncheckable: "the device's output is on the host side, invisible to the driver",
  }),
  device('device-add-below-max', '5.3.6.2.1', 'MUST NOT', 'DEVICE_ADD names no port at or above max_nr_ports.', {
    check: afterReady((messages, t) => {
      const bad = messages.find((m) => m.event === VIRTIO_CONSOLE_DEVICE_ADD && m.id >= t.maxNrPorts);
      return bad && `port ${bad.id} added, max_nr_ports ${t.maxNrPorts}`;
    }),
  }),
  device('device-add-new-port', '5.3.6.2.1', 'MUST NOT', 'DEVICE_ADD names no port that already exists.', {
    check: afterReady(readded),
  }),
  device(
    'device-ready-again-no-readd',
    '5.3.6.2.1',
    'MUST NOT',
    'A repeated DEVICE_READY does not make the device add its existing ports again.',
    {
      check: afterReady(readded, true),
    },
  ),
  device('device-remove-only-added', '5.3.6.2.1', 'MUST NOT', 'DEVICE_REMOVE names only a port added before.', {
    check: afterReady((messages) => {
      const added = new Set<number>();
      for (const m of messages) {
        if (m.event === VIRTIO_CONSOLE_DEVICE_ADD) added.add(m.id);
        if (m.event === VIRTIO_CONSOLE_DEVICE_REMOVE && !added.has(m.id)) return `port ${m.id} removed, never added`;
      }
      return undefined;
    }),
  }),
  device(
    'legacy-native-endian',
    '5.3.6.3',
    'MUST',
    'Through the legacy interface, configuration and control message fields are in the guest native byte order.',
    {
      uncheckable:
        "the guest's native byte order is not visible on the bus; on the little-endian hosts every target runs on it is the modern format",
    },
  ),
  auditedStatement('console', R.consoleBufferDirection),
  driver('device-ready', '5.3.6.2.2', 'MUST', 'With VIRTIO_CONSOLE_F_MULTIPORT negotiated, the driver sends DEVICE_READY.', NO_DEADLINE),
  driver('console-port-text', '5.3.6.2.2', 'SHOULD', 'The driver treats a port named by CONSOLE_PORT as a text console.', DRIVER_OWN_STATE),
  driver('console-port-open', '5.3.6.2.2', 'MUST', 'The driver answers CONSOLE_PORT with PORT_OPEN of value 1.', NO_DEADLINE),
  driver(
    'legacy-ignore-tx-used-len',
    '5.3.6.3',
    'SHOULD',
    'Through the legacy interface, the driver ignores used lengths of the transmitqs and the control transmitq.',
    DRIVER_OWN_STATE,
  ),
  driver(
    'legacy-framing',
    '5.3.6.4',
    'MUST',
    'Without VIRTIO_F_ANY_LAYOUT through the legacy interface, every control queue buffer is one descriptor.',
    NOT_AUDITED_YET,
  ),
];
