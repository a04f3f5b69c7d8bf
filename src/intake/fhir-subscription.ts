import { timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import type { Bundle, ImagingStudy, Resource, Subscription } from '@medplum/fhirtypes';
import { isUid } from '../dicom/tags.js';
import type { FhirGateway } from '../fhir/client.js';
import { OperationOutcomeError } from '../util/operation-outcome.js';
import type { JobStore } from '../jobs/job-store.js';
import type { Logger } from '../log.js';

export interface NotifyOptions {
  token: string;
  store: JobStore;
  fhir: FhirGateway;
  /** Records a study seen in a notification (it becomes a job once settled). */
  onStudy: (studyUid: string) => Promise<void>;
  /** Closes a gap in the notifications with a QIDO-RS sweep of the PACS. */
  sweep: () => Promise<unknown>;
  log: Logger;
}

interface StatusEvent {
  number: number | undefined;
  focus: string | undefined;
}

interface NotificationStatus {
  type: string;
  subscription: string;
  eventsSinceStart: number | undefined;
  events: StatusEvent[];
}

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A notification field that cannot be read; `expression` says where it is. */
class MalformedNotification extends Error {
  constructor(
    message: string,
    readonly expression: string,
  ) {
    super(message);
    this.name = 'MalformedNotification';
  }
}

/**
 * An event count or number: absent, or a whole number from 0 to 2^53 - 1, as a JSON number or (integer64, the
 * backport's valueString) a string of digits. Anything else is refused rather than rounded: a count of 1e30 read
 * as a number would exceed every later count and hide every gap after it.
 */
function eventCount(v: unknown, expression: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  if (Number.isSafeInteger(n) && n >= 0) return n;
  const shown = typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v === 'number' ? String(v) : `a JSON ${Array.isArray(v) ? 'array' : typeof v}`;
  throw new MalformedNotification(`${expression} is ${shown}, not a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`, expression);
}

/** The checkpoint kept for a subscription; a value written before counts were checked is started afresh. */
function storedCount(value: string | undefined): number {
  const n = value === undefined ? 0 : Number(value);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** The status part of a topic-based notification: a SubscriptionStatus (R4B/R5) or the R4 backport's Parameters. */
function readStatus(resource: unknown): NotificationStatus | undefined {
  const r = resource as Record<string, unknown> | undefined;
  if (r?.resourceType === 'SubscriptionStatus') {
    const events = Array.isArray(r.notificationEvent) ? (r.notificationEvent as { eventNumber?: unknown; focus?: { reference?: unknown } }[]) : [];
    return {
      type: text(r.type),
      subscription: text((r.subscription as { reference?: unknown } | undefined)?.reference),
      eventsSinceStart: eventCount(r.eventsSinceSubscriptionStart, 'SubscriptionStatus.eventsSinceSubscriptionStart'),
      events: events.map((e, i) => ({
        number: eventCount(e.eventNumber, `SubscriptionStatus.notificationEvent[${i}].eventNumber`),
        focus: typeof e.focus?.reference === 'string' ? e.focus.reference : undefined,
      })),
    };
  }
  if (r?.resourceType === 'Parameters' && Array.isArray(r.parameter)) {
    const params = r.parameter as { name?: unknown; valueCode?: unknown; valueString?: unknown; valueReference?: { reference?: unknown }; part?: unknown }[];
    const value = (name: string) => params.find((p) => p.name === name);
    const events = params.filter((p) => p.name === 'notification-event').map((p, i) => {
      const parts = Array.isArray(p.part) ? (p.part as { name?: unknown; valueString?: unknown; valueReference?: { reference?: unknown } }[]) : [];
      const focus = parts.find((x) => x.name === 'focus')?.valueReference?.reference;
      const number = eventCount(parts.find((x) => x.name === 'event-number')?.valueString, `Parameters.parameter('notification-event')[${i}].part('event-number').valueString`);
      return { number, focus: typeof focus === 'string' ? focus : undefined };
    });
    return {
      type: text(value('type')?.valueCode),
      subscription: text(value('subscription')?.valueReference?.reference),
      eventsSinceStart: eventCount(value('events-since-subscription-start')?.valueString, "Parameters.parameter('events-since-subscription-start').valueString"),
      events,
    };
  }
  return undefined;
}

export function studyUidOf(study: ImagingStudy): string | undefined {
  const id = study.identifier?.find((i) => i.system === 'urn:dicom:uid')?.value?.replace(/^urn:oid:/, '');
  return isUid(id) ? id : undefined;
}

/**
 * The FHIR intake: a rest-hook Subscription on ImagingStudy posts to `POST /fhir/notify`. Accepted are R4
 * notifications (the ImagingStudy itself, or an empty body) and the topic-based backport of R4B/R5 (a Bundle whose
 * first entry is the SubscriptionStatus or Parameters): handshakes and heartbeats are acknowledged, event numbers
 * are followed, and a gap in them — a notification lost on the way — is closed by a QIDO-RS sweep of the PACS.
 */
export function notifyRouter(options: NotifyOptions): Router {
  const router = Router();
  const { store, log } = options;
  const expected = Buffer.from(`Bearer ${options.token}`);

  const checkpoint = (subscription: string) => `fhir.events.${subscription || 'default'}`;

  const gap = (why: string) => {
    log.warn({ why }, 'FHIR notifications have a gap; sweeping the PACS with QIDO-RS');
    void options.sweep().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'the sweep after a notification gap failed'));
  };

  const studyFromFocus = async (focus: string, bundle: Bundle): Promise<string | undefined> => {
    const included = bundle.entry?.find((e) => e.fullUrl === focus || (e.resource?.id && `${e.resource.resourceType}/${e.resource.id}` === focus.split('/').slice(-2).join('/')))?.resource;
    if (included?.resourceType === 'ImagingStudy') return studyUidOf(included);
    const m = /(?:^|\/)ImagingStudy\/([A-Za-z0-9\-.]{1,64})$/.exec(focus);
    if (!m) return undefined;
    try {
      return studyUidOf(await options.fhir.read<ImagingStudy>('ImagingStudy', m[1]!));
    } catch (err) {
      log.warn({ focus, err: (err as Error).message }, 'the ImagingStudy of a notification cannot be read');
      return undefined;
    }
  };

  router.post('/fhir/notify', async (req, res) => {
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new OperationOutcomeError(401, 'security', 'FHIR notification refused: missing or wrong Authorization header (it must carry the token set in the Subscription\'s channel.header, RADDRAFT_FHIR_NOTIFY_TOKEN)');
    }
    const body: unknown = req.body;
    if (body === undefined || (typeof body === 'object' && body !== null && Object.keys(body).length === 0)) {
      // An R4 notification without payload says only that something changed.
      gap('a notification without payload');
      res.status(200).end();
      return;
    }
    const resource = body as Resource;
    if (resource.resourceType === 'ImagingStudy') {
      const uid = studyUidOf(resource);
      if (!uid) throw new OperationOutcomeError(400, 'invalid', 'FHIR notification: the ImagingStudy has no identifier urn:dicom:uid|urn:oid:<StudyInstanceUID>', 'ImagingStudy.identifier');
      await options.onStudy(uid);
      res.status(200).end();
      return;
    }
    if (resource.resourceType !== 'Bundle') {
      throw new OperationOutcomeError(400, 'invalid', `FHIR notification: the body is a ${resource.resourceType}, neither an ImagingStudy nor a subscription-notification Bundle`);
    }
    const bundle = resource;
    let status: NotificationStatus | undefined;
    try {
      status = readStatus(bundle.entry?.[0]?.resource);
    } catch (err) {
      if (!(err instanceof MalformedNotification)) throw err;
      // Its events were not taken in, so whatever it announced is looked for on the PACS instead.
      gap(`a notification was refused: ${err.message}`);
      throw new OperationOutcomeError(400, 'invalid', `FHIR notification: ${err.message}; it was not processed, and the PACS is being swept with QIDO-RS instead`, err.expression);
    }
    if (!status) {
      throw new OperationOutcomeError(400, 'invalid', 'FHIR notification: Bundle.entry[0] is not a SubscriptionStatus or a subscription-status Parameters resource', 'Bundle.entry[0].resource');
    }
    const key = checkpoint(status.subscription);
    const last = storedCount(await store.getCheckpoint(key));
    switch (status.type) {
      case 'handshake':
        log.info({ subscription: status.subscription }, 'FHIR subscription handshake');
        break;
      case 'heartbeat':
        if (status.eventsSinceStart !== undefined && status.eventsSinceStart > last) {
          gap(`heartbeat says ${status.eventsSinceStart} events were sent, ${last} were received`);
          await store.setCheckpoint(key, String(status.eventsSinceStart));
        }
        break;
      case 'event-notification': {
        const numbers = status.events.map((e) => e.number).filter((n): n is number => n !== undefined).sort((a, b) => a - b);
        const first = numbers[0] ?? status.eventsSinceStart;
        if (first !== undefined && last > 0 && first > last + 1) gap(`events ${last + 1} to ${first - 1} never arrived`);
        for (const e of status.events) {
          const uid = e.focus ? await studyFromFocus(e.focus, bundle) : undefined;
          if (uid) await options.onStudy(uid);
          else gap(`event ${e.number ?? '?'} names no ImagingStudy raddraft can read (${e.focus ?? 'no focus'})`);
        }
        const top = Math.max(last, ...numbers, status.eventsSinceStart ?? 0);
        await store.setCheckpoint(key, String(top));
        break;
      }
      default:
        throw new OperationOutcomeError(400, 'invalid', `FHIR notification: unknown notification type ${JSON.stringify(status.type)} (expected handshake, heartbeat or event-notification)`);
    }
    res.status(200).end();
  });
  return router;
}

/** Asks the FHIR server to notify raddraft of new imaging studies (an R4 rest-hook Subscription), once. */
export async function ensureSubscription(fhir: FhirGateway, endpoint: string, token: string): Promise<void> {
  const subscription: Subscription = {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'raddraft drafts preliminary reports for new chest X-ray studies',
    criteria: 'ImagingStudy?status=available',
    channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json', header: [`Authorization: Bearer ${token}`] },
  };
  await fhir.createIfNoneExist(subscription, `url=${encodeURIComponent(endpoint)}`);
}
