import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import { createLogger, jobLogger, PhiRegistry } from '../src/log.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

describe('logging', () => {
  it('redacts patient fields by name wherever a caller puts them', () => {
    const { lines, destination } = capture();
    const log = createLogger({ destination, registry: new PhiRegistry() });
    log.info({ PatientName: 'DOE^JANE', study: { patientId: 'MRN-1', accession: 'A-1' } }, 'x');
    expect(lines.join('')).not.toMatch(/DOE\^JANE|MRN-1|A-1/);
    expect(lines.join('')).toContain('[redacted]');
  });

  it('scrubs patient identifiers held by a job out of messages and errors, and stops once released', () => {
    const { lines, destination } = capture();
    const registry = new PhiRegistry();
    const log = jobLogger(createLogger({ destination, registry }), { id: 'job-1', studyUid: '1.2.3' });
    const release = registry.hold(['MRN-778899', undefined, 'ACC-5566']);
    log.warn({ err: new Error('GET Patient?identifier=MRN-778899 failed') }, 'lookup for ACC-5566 failed');
    release();
    log.info('after MRN-778899');
    const out = lines.join('');
    expect(out).toContain('"studyUid":"1.2.3"');
    expect(out).toContain('Patient?identifier=[redacted] failed');
    expect(out).toContain('lookup for [redacted] failed');
    expect(out).toContain('after MRN-778899');
  });
});
