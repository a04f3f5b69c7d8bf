import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { MEDEVALKIT_REPORT_PROMPT, type ContentPart } from './prompt.js';

/**
 * How one family of served vision models is asked for a report: its prompt, where the images go, and the image size
 * its processor works at. Lingshu is the default; MedGemma and other OpenAI-compatible vision models get their own.
 */
export interface ModelProfile {
  name: string;
  /** A system message, when the model was instructed with one. */
  system?: string;
  /** The instruction; it must ask for "Findings:" and "Impression:" sections, which raddraft parses. */
  prompt: string;
  /** Each image preceded by `<image_N>: ` (MedEvalKit's Qwen2.5-VL adapters) rather than sent bare. */
  imageLabels: boolean;
  /** The instruction before the images rather than after them. */
  textFirst: boolean;
  /** A square side the model's image processor resizes every image to; unset keeps the 28-pixel grid as rendered. */
  imageSide?: number;
  /** Recorded with each draft, so quality can be compared by prompt. */
  promptVersion: string;
}

export const LINGSHU_PROFILE: ModelProfile = {
  name: 'lingshu',
  prompt: MEDEVALKIT_REPORT_PROMPT,
  imageLabels: true,
  textFirst: false,
  promptVersion: 'medevalkit-report-1',
};

/**
 * MedGemma 4B/27B instruction-tuned, as its model card instructs it: system "You are an expert radiologist.", the
 * request before the image, images at 896 × 896 (its SigLIP encoder's input). The card's request "Describe this
 * X-ray" gets the format sentence of MedEvalKit's prompt, because raddraft needs the two sections to parse.
 */
export const MEDGEMMA_PROFILE: ModelProfile = {
  name: 'medgemma',
  system: 'You are an expert radiologist.',
  prompt: 'Describe this X-ray. Return the report in the following format: Findings: {} Impression: {}.',
  imageLabels: false,
  textFirst: true,
  imageSide: 896,
  promptVersion: 'medgemma-report-1',
};

export const BUILT_IN_PROFILES: Readonly<Record<string, ModelProfile>> = { lingshu: LINGSHU_PROFILE, medgemma: MEDGEMMA_PROFILE };

/**
 * The profile for a served model: a named or file-given one when the setting says so, else by the model's name
 * (MedGemma for names containing "medgemma", Lingshu otherwise).
 */
export function profileFor(model: string, setting: ModelProfile | 'auto' = 'auto'): ModelProfile {
  if (setting !== 'auto') return setting;
  return /medgemma/i.test(model) ? MEDGEMMA_PROFILE : LINGSHU_PROFILE;
}

/** RADDRAFT_MODEL_PROFILE made a profile: auto (by the model's name), a built-in name, or a JSON file. */
export function profileSetting(model: string, setting: string): ModelProfile {
  if (setting === 'auto' || setting === '') return profileFor(model);
  return BUILT_IN_PROFILES[setting] ?? readProfileFile(setting);
}

/** A site's own profile from a JSON file; every problem is named with the file and the field. */
export function readProfileFile(file: string): ModelProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`model profile ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not JSON (${(err as Error).message})`}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`model profile ${file}: not a JSON object`);
  const p = raw as Record<string, unknown>;
  const text = (field: string, required: boolean): string | undefined => {
    const v = p[field];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || !v.trim()) throw new Error(`model profile ${file}: "${field}" must be non-empty text`);
    return v;
  };
  const flag = (field: string, fallback: boolean): boolean => {
    const v = p[field];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw new Error(`model profile ${file}: "${field}" must be true or false`);
    return v;
  };
  const prompt = text('prompt', true)!;
  if (!/findings/i.test(prompt) || !/impression/i.test(prompt)) throw new Error(`model profile ${file}: "prompt" must ask for Findings and Impression sections, which raddraft parses`);
  const side = p.imageSide;
  if (side !== undefined && (typeof side !== 'number' || !Number.isInteger(side) || side < 28 || side > 4096)) throw new Error(`model profile ${file}: "imageSide" must be a whole number of pixels from 28 to 4096`);
  const system = text('system', false);
  const name = text('name', false) ?? 'custom';
  return {
    name, prompt, imageLabels: flag('imageLabels', false), textFirst: flag('textFirst', true),
    promptVersion: text('promptVersion', false) ?? `${name}-report`,
    ...(system ? { system } : {}), ...(typeof side === 'number' ? { imageSide: side } : {}),
  };
}

export type ChatMessage = { role: 'system'; content: string } | { role: 'user'; content: ContentPart[] };

/** Images at the profile's size: resized to its square side (as its processor would), or as rendered. */
async function sized(profile: ModelProfile, images: readonly { png: Buffer }[]): Promise<Buffer[]> {
  if (!profile.imageSide) return images.map((i) => i.png);
  const side = profile.imageSide;
  return Promise.all(images.map((i) => sharp(i.png).resize(side, side, { fit: 'fill', kernel: 'cubic' }).png({ compressionLevel: 3 }).toBuffer()));
}

/** The messages of a profile other than Lingshu's (whose messages buildReportMessages builds byte for byte). */
export async function buildProfileMessages(profile: ModelProfile, images: readonly { png: Buffer }[]): Promise<ChatMessage[]> {
  const parts: ContentPart[] = [];
  for (const [i, png] of (await sized(profile, images)).entries()) {
    if (profile.imageLabels) parts.push({ type: 'text', text: `<image_${i + 1}>: ` });
    parts.push({ type: 'image_url', png });
  }
  const prompt: ContentPart = { type: 'text', text: profile.prompt };
  const content = profile.textFirst ? [prompt, ...parts] : [...parts, prompt];
  return [...(profile.system ? [{ role: 'system' as const, content: profile.system }] : []), { role: 'user', content }];
}
