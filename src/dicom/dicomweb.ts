import { createWriteStream } from 'node:fs';
import { httpFault, type Fault, type FaultKind } from '../util/faults.js';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { request, type Dispatcher } from 'undici';
import type { HttpAuth } from '../config/load.js';
import { authorizationHeader } from '../util/auth-header.js';
import { boundaryOf, firstPart, splitMultipart, type PartSink } from './multipart.js';
import { HttpGetError, httpGetInto, type GrowableBytes, type HttpGetResult } from '../util/http-get-into.js';
import type { DicomJson } from './tags.js';
import { networkCause } from '../util/network-cause.js';

/** A DICOMweb request that failed; the message names the request by path (UIDs only) and what went wrong. */
export class DicomWebError extends Error implements Fault {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'DicomWebError';
  }

  /** No answer at all (the PACS is down or out of reach) or HTTP 429: jobs wait instead of using up attempts. */
  get fault(): FaultKind {
    return httpFault(this.status, this.retryable);
  }
}

export interface DicomWebOptions {
  url: string;
  auth: HttpAuth;
  timeoutMs?: number;
}

const PAGE = 100;

export class DicomWebClient {
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(private readonly options: DicomWebOptions) {
    this.headers = authorizationHeader(options.auth);
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  get baseUrl(): string {
    return this.options.url;
  }

  /** QIDO-RS study search, following pages until the server returns fewer than asked for. */
  async searchStudies(query: Record<string, string | string[]>): Promise<DicomJson[]> {
    const out: DicomJson[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) for (const item of [v].flat()) params.append(k, item);
      params.set('limit', String(PAGE));
      params.set('offset', String(offset));
      const page = await this.getJsonArray(`/studies?${params.toString()}`, 'QIDO-RS study search');
      out.push(...page);
      if (page.length < PAGE) return out;
    }
  }

  /** WADO-RS metadata of every instance in a study (no pixel data). */
  async studyMetadata(studyUid: string): Promise<DicomJson[]> {
    try {
      return await this.getJsonArray(`/studies/${studyUid}/metadata`, `WADO-RS metadata of study ${studyUid}`);
    } catch (err) {
      // A study the PACS does not know has no instances to draft from.
      if (err instanceof DicomWebError && err.status === 404) return [];
      throw err;
    }
  }

  /**
   * Streams one instance to `file` via WADO-RS (multipart/related, original transfer syntax). Returns the bytes
   * written. A partial file is removed on failure.
   */
  async retrieveInstance(studyUid: string, seriesUid: string, sopUid: string, file: string): Promise<number> {
    let opened: PartSink | undefined;
    try {
      return await this.streamInstance(studyUid, seriesUid, sopUid, async () => (opened = await fileSink(file)));
    } catch (err) {
      await opened?.end().catch(() => undefined);
      await rm(file, { force: true });
      throw err;
    }
  }

  /**
   * Streams one instance via WADO-RS (multipart/related, original transfer syntax) into the sink `open` gives,
   * opened once the PACS has answered with a DICOM part. Returns the bytes written.
   */
  async streamInstance(studyUid: string, seriesUid: string, sopUid: string, open: () => Promise<PartSink>): Promise<number> {
    const what = `WADO-RS instance ${sopUid}`;
    const path = `/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`;
    const res = await this.request(path, INSTANCE_ACCEPT, what);
    const contentType = headerOf(res, 'content-type');
    const boundary = boundaryOf(contentType);
    if (!boundary) {
      await res.body.dump();
      throw new DicomWebError(`${what}: the PACS answered ${contentType ?? 'no Content-Type'}, expected multipart/related with a boundary`, res.statusCode, false);
    }
    let bytes = 0;
    let sinks = 0;
    try {
      const parts = await splitMultipart(res.body, boundary, async (headers) => {
        const type = headers['content-type'] ?? '';
        if (!/^application\/dicom\b/i.test(type)) {
          throw new DicomWebError(`${what}: a part has Content-Type ${type || '(none)'}, expected application/dicom`, res.statusCode, false);
        }
        if (sinks > 0) throw new DicomWebError(`${what}: the PACS returned more than one instance`, res.statusCode, false);
        sinks += 1;
        const sink = await open();
        return {
          write: (chunk) => {
            bytes += chunk.length;
            return sink.write(chunk);
          },
          end: () => sink.end(),
        };
      });
      if (parts === 0) throw new DicomWebError(`${what}: the PACS returned no instance`, res.statusCode, true);
    } catch (err) {
      res.body.destroy();
      // A sink's own refusal (an instance too large to render, say) is passed on as it is.
      if (err instanceof DicomWebError || (err as Error).name === 'RenderError') throw err;
      throw new DicomWebError(`${what}: the response broke off (${(err as Error).message})`, res.statusCode, true);
    }
    return bytes;
  }

  /**
   * Reads one instance via WADO-RS (multipart/related, original transfer syntax) into `memory`, where the socket
   * writes it: no copy on the way to the rendering thread. Returns where the instance lies in what was written.
   */
  async readInstanceInto(studyUid: string, seriesUid: string, sopUid: string, memory: GrowableBytes): Promise<{ offset: number; length: number }> {
    const what = `WADO-RS instance ${sopUid}`;
    const url = new URL(`${this.options.url}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}`);
    let res: HttpGetResult;
    try {
      res = await httpGetInto(url, memory, { headers: { accept: INSTANCE_ACCEPT, ...this.headers }, timeoutMs: this.timeoutMs });
    } catch (err) {
      if (!(err instanceof HttpGetError)) throw err;
      if (err.status === undefined) throw new DicomWebError(`${what}: cannot reach the PACS at ${this.options.url} (${err.code ?? err.message})`, undefined, true);
      if (err.status >= 200 && err.status < 300) throw new DicomWebError(`${what}: the response broke off (${err.message})`, err.status, true);
      throw statusError(what, err.status);
    }
    if (res.status < 200 || res.status >= 300) throw statusError(what, res.status);
    const contentType = res.headers['content-type'];
    const boundary = boundaryOf(contentType);
    if (!boundary) throw new DicomWebError(`${what}: the PACS answered ${contentType ?? 'no Content-Type'}, expected multipart/related with a boundary`, res.status, false);
    let part;
    try {
      part = firstPart(memory.written().subarray(res.bodyStart, res.bodyEnd), boundary);
    } catch (err) {
      throw new DicomWebError(`${what}: the response is not a well-formed multipart body (${(err as Error).message})`, res.status, true);
    }
    if (!part) throw new DicomWebError(`${what}: the PACS returned no instance`, res.status, true);
    const type = part.headers['content-type'] ?? '';
    if (!/^application\/dicom\b/i.test(type)) throw new DicomWebError(`${what}: a part has Content-Type ${type || '(none)'}, expected application/dicom`, res.status, false);
    if (part.more) throw new DicomWebError(`${what}: the PACS returned more than one instance`, res.status, false);
    return { offset: res.bodyStart + part.start, length: part.end - part.start };
  }

  /** A cheap request proving the endpoint answers DICOMweb: one study of any date. */
  async ping(): Promise<void> {
    await this.getJsonArray('/studies?limit=1', 'QIDO-RS');
  }

  private async getJsonArray(path: string, what: string): Promise<DicomJson[]> {
    const res = await this.request(path, 'application/dicom+json', what);
    if (res.statusCode === 204) {
      await res.body.dump();
      return [];
    }
    let body: unknown;
    try {
      body = await res.body.json();
    } catch {
      throw new DicomWebError(`${what}: the PACS answered with something that is not JSON`, res.statusCode, true);
    }
    if (!Array.isArray(body)) throw new DicomWebError(`${what}: the PACS answered JSON that is not a list of datasets`, res.statusCode, false);
    return body.filter((d): d is DicomJson => !!d && typeof d === 'object' && !Array.isArray(d));
  }

  /**
   * undici's request() rather than fetch(): on this kind of machine fetch reads a 12 MB WADO-RS response from a
   * local Orthanc some fifteen times slower than request() does.
   */
  private async request(path: string, accept: string, what: string): Promise<Dispatcher.ResponseData> {
    const url = `${this.options.url}${path}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { headers: { accept, ...this.headers }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new DicomWebError(`${what}: cannot reach the PACS at ${this.options.url} (${networkCause(err)})`, undefined, true);
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300) return res;
    await res.body.dump().catch(() => undefined);
    throw statusError(what, status);
  }
}

const INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

/** A PACS's refusal (HTTP 3xx–5xx), with what to check. */
function statusError(what: string, status: number): DicomWebError {
  const hint = status === 401 || status === 403 ? '; check RADDRAFT_DICOMWEB_AUTH' : status === 404 ? ' (not found)' : '';
  return new DicomWebError(`${what}: the PACS answered HTTP ${status}${hint}`, status, status === 429 || status >= 500);
}

function headerOf(res: Dispatcher.ResponseData, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function fileSink(file: string): Promise<PartSink> {
  const out = createWriteStream(file);
  await once(out, 'open');
  return {
    async write(chunk) {
      if (!out.write(chunk)) await once(out, 'drain');
    },
    async end() {
      out.end();
      await once(out, 'finish');
    },
  };
}
