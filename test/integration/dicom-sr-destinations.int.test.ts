import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import type { SrDestination } from '../../src/config/sr.js';
import { DicomWebClient } from '../../src/dicom/dicomweb.js';
import { cEcho } from '../../src/dicom/dimse-store.js';
import { documentUid } from '../../src/dicom/sr-uids.js';
import { PacsSource } from '../../src/dicom/study-source.js';
import { Tag, str, type DicomJson } from '../../src/dicom/tags.js';
import { freePort } from '../../src/demo/ports.js';
import { startOrthanc, type OrthancInstance } from '../../src/demo/orthanc.js';
import { stowFiles } from '../../src/demo/stow.js';
import { dicomSrOutput } from '../../src/outputs/dicom-sr.js';
import type { DeliveryOutcome } from '../../src/report/output.js';
import type { DraftedEvent, ReportEvent, SignedEvent } from '../../src/report/report.js';
import { SOFTWARE } from '../../src/version.js';
import { fixture } from '../harness/peers.js';
import { dciodvfy, dsrdump, startRefusingScp, startRefusingStow, startStorescp, startTalkativeScp } from '../harness/sr-receivers.js';

jest.setTimeout(60_000);

const study = fixture('chest-pa-lat');
const REPORT_KEY = `${study.studyUid}_test-model`;

/** A drafted event for the fixture's images, as the pipeline records one. */
function draftedEvent(metadata: DicomJson[]): DraftedEvent {
  return {
    id: `${REPORT_KEY}:0`, reportKey: REPORT_KEY, seq: 0, studyUid: study.studyUid, jobId: 'job-1', at: '2026-12-01T10:00:00.000Z', kind: 'drafted',
    images: metadata.map((ds, i) => ({
      sopUid: str(ds, Tag.SOPInstanceUID)!, seriesUid: str(ds, Tag.SeriesInstanceUID)!, view: str(ds, Tag.ViewPosition) ?? `view-${i}`,
      file: `image-${i}.png`, sha256: '0'.repeat(64), width: 896, height: 1092, sourceWidth: 2048, sourceHeight: 2500,
      window: { center: 2048, width: 4096, source: 'VOI LUT' }, photometric: 'MONOCHROME2', transferSyntaxUid: '1.2.840.10008.1.2.1',
    })),
    draft: {
      findings: 'The heart size is normal. No pleural effusion.', impression: 'No acute cardiopulmonary process.', text: '',
      model: 'lingshu-medical-mllm/Lingshu-7B', promptVersion: 'medevalkit-v1', requestId: undefined, draftedAt: '2026-12-01T10:00:00.000Z',
    },
  };
}

// No model server answers here: the SR names the model without a revision.
const NO_MODEL_SERVER = 'http://127.0.0.1:9/v1';

describe('the dicom-sr output stores into each kind of destination and says what a refusal means', () => {
  let orthanc: OrthancInstance;
  let pacs: PacsSource;
  let draft: DraftedEvent;
  const signal = new AbortController().signal;

  const outputTo = (destination: SrDestination) => dicomSrOutput({
    studies: pacs, software: SOFTWARE, waitMs: 1000, modelEndpoint: NO_MODEL_SERVER, sr: { destination, organization: 'Radiology', timeoutMs: 10_000 },
    reportEvents: () => Promise.resolve([draft]),
  });
  const dimse = (port: number, calledAet: string): SrDestination => ({ kind: 'dimse', host: '127.0.0.1', port, calledAet, callingAet: 'RADDRAFT' });
  const deliver = (destination: SrDestination, event: ReportEvent = draft): Promise<DeliveryOutcome> =>
    outputTo(destination).deliver(event, { earlier: event.kind === 'drafted' ? [] : [{ kind: 'drafted', seq: 0, reference: 'x' }], signal });

  beforeAll(async () => {
    orthanc = await startOrthanc();
    await stowFiles(orthanc.dicomWebUrl, study.files);
    pacs = new PacsSource(new DicomWebClient({ url: orthanc.dicomWebUrl, auth: { kind: 'none' } }));
    draft = draftedEvent(await pacs.metadata(study.studyUid));
  });

  afterAll(async () => {
    await orthanc?.stop();
  });

  it('stores the draft SR through Orthanc\'s DICOM port (C-STORE), once however often it is sent', async () => {
    const first = await deliver(dimse(orthanc.dicomPort, orthanc.aet));
    expect(first).toMatchObject({ kind: 'delivered', note: expect.stringContaining('C-STORE') });
    expect(await deliver(dimse(orthanc.dicomPort, orthanc.aet))).toMatchObject({ kind: 'delivered' });
    const series = (await (await fetch(`${orthanc.dicomWebUrl}/studies/${study.studyUid}/series?Modality=SR`)).json()) as DicomJson[];
    expect(series).toHaveLength(1);
    const instances = (await (await fetch(`${orthanc.dicomWebUrl}/studies/${study.studyUid}/series/${str(series[0]!, Tag.SeriesInstanceUID)}/instances`)).json()) as DicomJson[];
    expect(instances.map((i) => str(i, Tag.SOPInstanceUID))).toEqual([(first as { reference: string }).reference.split('/').pop()]);
  });

  it('stores a signed SR by STOW-RS once however often it is sent', async () => {
    const signed: SignedEvent = {
      id: `${REPORT_KEY}:1`, reportKey: REPORT_KEY, seq: 1, studyUid: study.studyUid, jobId: 'job-1', at: '2026-12-01T11:00:00.000Z', kind: 'signed',
      findings: 'The heart size is normal.', impression: 'Normal chest.', by: { reference: 'Practitioner/ada', display: 'Dr Ada Example' }, reviewedVersion: '2',
    };
    const stow: SrDestination = { kind: 'dicomweb', url: orthanc.dicomWebUrl, auth: { kind: 'none' } };
    const first = await deliver(stow, signed);
    expect(first).toMatchObject({ kind: 'delivered', note: 'stored by STOW-RS' });
    expect(await deliver(stow, signed)).toEqual(first);
    const sopUid = (first as { reference: string }).reference.split('/').pop();
    const found = (await (await fetch(`${orthanc.dicomWebUrl}/studies/${study.studyUid}/instances?SOPInstanceUID=${sopUid}`)).json()) as DicomJson[];
    expect(found).toHaveLength(1);
  });

  it('stores the draft SR at DCMTK storescp, where dciodvfy finds no error and dsrdump reads it', async () => {
    const scp = await startStorescp();
    try {
      expect(await deliver(dimse(scp.port, 'STORESCP'))).toMatchObject({ kind: 'delivered' });
      const files = await readdir(scp.dir);
      expect(files).toHaveLength(1);
      const file = path.join(scp.dir, files[0]!);
      expect((await dciodvfy(file)).errors).toEqual([]);
      const dump = await dsrdump(file);
      expect(dump).toContain('Verification Flag   : UNVERIFIED');
      expect(dump).toContain('The heart size is normal. No pleural effusion.');
    } finally {
      await scp.stop();
    }
  });

  it('retries a C-STORE the archive answers with a failure status, naming the status', async () => {
    const scp = await startRefusingScp();
    try {
      const outcome = await deliver(dimse(scp.port, 'FULLPACS'));
      expect(outcome).toMatchObject({ kind: 'retry', reason: expect.stringContaining('status 0xA700 (refused: out of resources)') });
    } finally {
      await scp.stop();
    }
  });

  it('takes the patient\'s identifiers out of what a refusing archive says', async () => {
    const scp = await startTalkativeScp('no room for DOE^JANE (RDX-PHI-100123)');
    try {
      const outcome = await deliver(dimse(scp.port, 'TALKATIVE'));
      expect(outcome).toMatchObject({ kind: 'retry', reason: expect.stringContaining('no room for [redacted] ([redacted])') });
      expect(JSON.stringify(outcome)).not.toMatch(/DOE|RDX-PHI/);
    } finally {
      await scp.stop();
    }
  });

  it('retries a STOW-RS the archive answers 409, naming its failure reason', async () => {
    const stow = await startRefusingStow();
    try {
      const outcome = await deliver({ kind: 'dicomweb', url: stow.url, auth: { kind: 'none' } });
      expect(outcome).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/HTTP 409, failure reason 0xA700/) });
    } finally {
      await stow.stop();
    }
  });

  it('waits, using no attempt, while nothing listens at the C-STORE destination', async () => {
    const outcome = await deliver(dimse(await freePort(), 'NOBODY'));
    expect(outcome).toMatchObject({ kind: 'wait', reason: expect.stringContaining('ECONNREFUSED') });
  });

  it('gives up on a C-STORE peer that accepts the connection and then says nothing, within the timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    try {
      const port = (silent.address() as AddressInfo).port;
      const output = dicomSrOutput({
        studies: pacs, software: SOFTWARE, waitMs: 1000, modelEndpoint: NO_MODEL_SERVER, sr: { destination: dimse(port, 'SILENT'), organization: 'Radiology', timeoutMs: 1000 },
        reportEvents: () => Promise.resolve([draft]),
      });
      const outcome = await output.deliver(draft, { earlier: [], signal });
      expect(outcome).toMatchObject({ kind: 'retry', reason: expect.stringContaining('did not complete the C-STORE within 1 s') });
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('checks a C-STORE destination with C-ECHO for doctor, and names one that is not listening', async () => {
    await expect(cEcho({ host: '127.0.0.1', port: orthanc.dicomPort, calledAet: orthanc.aet, callingAet: 'RADDRAFT' }, 5000)).resolves.toBeUndefined();
    const port = await freePort();
    await expect(cEcho({ host: '127.0.0.1', port, calledAet: 'NOBODY', callingAet: 'RADDRAFT' }, 5000))
      .rejects.toThrow(`the C-STORE SCP NOBODY at 127.0.0.1:${port} cannot be reached (ECONNREFUSED)`);
  });

  it('stores no VERIFIED SR for a signature that names no authenticated Practitioner', async () => {
    const unsigned: SignedEvent = {
      id: `${REPORT_KEY}:2`, reportKey: REPORT_KEY, seq: 2, studyUid: study.studyUid, jobId: 'job-1', at: '2026-12-01T11:00:00.000Z', kind: 'signed',
      findings: 'x', impression: 'y', by: { reference: 'raddraft-api-token', display: 'automation' }, reviewedVersion: '2',
    };
    const outcome = await deliver({ kind: 'dicomweb', url: orthanc.dicomWebUrl, auth: { kind: 'none' } }, unsigned);
    expect(outcome).toMatchObject({ kind: 'permanent', reason: expect.stringContaining('no VERIFIED SR without one') });
    const stored = (await (await fetch(`${orthanc.dicomWebUrl}/studies/${study.studyUid}/instances?SOPInstanceUID=${documentUid(unsigned.id)}`)).json()) as DicomJson[];
    expect(stored).toEqual([]);
  });
});
