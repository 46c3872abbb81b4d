import type { CheckContext, Statement } from '../statement.js';
import { driverStatements } from './define.js';
import type { DriverTransport } from '../../transport/pci/driver-transport.js';
import { openDevice, writeFeatures } from '../bring-up.js';
import { VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, featureSet } from '../../spec/features.js';
import { auditedStatement, NOT_AUDITED_YET } from '../audited-statement.js';
import { DRIVER_REQUIREMENTS as R } from '../../spec/driver-requirements.js';

const family = 'device-config';
const driver = driverStatements(family);

/** Tries at a read of the whole configuration inside one generation before the check gives up on a device that keeps changing. */
const GENERATION_TRIES = 4;
/** Legacy-interface bits a modern driver leaves alone. */
const LEGACY_ONLY_BITS = featureSet(VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_ANY_LAYOUT, 30);

/** Every byte of the device-specific configuration, one byte access each. */
async function readAll(transport: DriverTransport): Promise<number[]> {
  const bytes: number[] = [];
  for (let offset = 0; offset < transport.deviceConfigSize; offset++) bytes.push(await transport.readConfig(offset, 1));
  return bytes;
}

/** Where two dumps differ, for the evidence. */
function differences(a: readonly number[], b: readonly number[]): string {
  const at = a.flatMap((v, i) => (v === b[i] ? [] : [`[${i}] 0x${v.toString(16)} then 0x${(b[i] ?? 0).toString(16)}`]));
  return at.slice(0, 8).join(', ') + (at.length > 8 ? `, and ${at.length - 8} more` : '');
}

async function hasConfig(ctx: CheckContext): Promise<string | undefined> {
  return (await ctx.transport()).deviceConfigSize > 0 ? undefined : 'the device has no device-specific configuration';
}

/** Family 'device-config' (see Family in ../statement.ts): 2.5 device configuration space and its generation. */
export const deviceConfigStatements: readonly Statement[] = [
  {
    id: `${family}/readable-before-features-ok`,
    section: '2.5.2',
    level: 'MUST',
    side: 'device',
    family,
    text: 'Before FEATURES_OK every configuration field reads as it does once the offered features are negotiated (conditional fields included).',
    check: {
      via: ['modern', 'legacy'],
      applies: hasConfig,
      async run(ctx: CheckContext) {
        const opened = await openDevice(ctx);
        const before = await readAll(opened.transport);
        const accepted = opened.modern ? opened.offered & ~LEGACY_ONLY_BITS : opened.offered & 0xffff_ffffn;
        if (!(await writeFeatures(opened, accepted)))
          ctx.note(`FEATURES_OK refused for 0x${accepted.toString(16)}; compared with the features written`);
        const after = await readAll(opened.transport);
        const diff = differences(before, after);
        ctx.require(diff === '', `configuration read before FEATURES_OK differs from the one after: ${diff}`);
      },
    },
  },
  {
    id: `${family}/generation-covers-changes`,
    section: '2.5',
    level: 'MUST',
    side: 'device',
    family,
    text: 'Two reads of the configuration between which config_generation did not change see the same bytes.',
    check: {
      via: ['modern'],
      applies: hasConfig,
      async run(ctx: CheckContext) {
        const { transport } = await openDevice(ctx);
        for (let attempt = 1; attempt <= GENERATION_TRIES; attempt++) {
          const generation = await transport.configGeneration();
          const first = await readAll(transport);
          const second = await readAll(transport);
          const after = await transport.configGeneration();
          if (after !== generation) continue;
          const diff = differences(first, second);
          ctx.require(diff === '', `config_generation ${generation} throughout, yet the bytes changed: ${diff}`);
          return;
        }
        ctx.note(`config_generation changed during each of ${GENERATION_TRIES} pairs of reads`);
      },
    },
  },
  {
    id: `${family}/generation-changes-with-device-change`,
    section: '2.5',
    level: 'MUST',
    side: 'device',
    family,
    text: 'config_generation changes whenever the device changes its configuration.',
    uncheckable:
      'the driver side cannot make a device change its own configuration in general; reads within one generation are checked apart (generation-covers-changes)',
  },
  auditedStatement(family, R.configGenerationLoop),
  ...(
    [
      [
        'no-wide-atomicity',
        '2.5.1',
        'MUST NOT',
        'The driver does not take reads of fields wider than 32 bits, or of several fields, as atomic.',
        'what the driver takes as atomic is its own belief; reads it makes with no config_generation around them are audited as device-config/generation-loop',
      ],
      [
        'checks-feature-of-field',
        '2.5.1',
        'MUST',
        'The driver reads an optional field only if the device offers the feature that defines it.',
        NOT_AUDITED_YET,
      ],
      [
        'no-size-limit',
        '2.5.1',
        'MUST NOT',
        'The driver does not limit the structure or configuration size it accepts.',
        'each of our devices has one configuration size: a driver limiting the size it accepts shows no access that differs',
      ],
      [
        'checks-size-large-enough',
        '2.5.1',
        'SHOULD',
        'The driver only checks that the configuration holds the fields it needs.',
        'which sizes the driver checks is its own reasoning: no access shows it',
      ],
      [
        'legacy-rereads',
        '2.5.4',
        'SHOULD',
        'On the legacy interface the driver rereads blk capacity and net mac until two reads agree.',
        NOT_AUDITED_YET,
      ],
    ] as const
  ).map(([slug, section, level, text, uncheckable]) => driver(slug, section, level, text, uncheckable)),
];
