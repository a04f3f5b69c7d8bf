/**
 * A CheXpert-style labeler for the 14 observations of the CheXpert labeler (Irvin et al. 2019;
 * stanfordmlgroup/chexpert-labeler): the same observation names, mention phrases (phrases/mention/*.txt) and
 * unmention phrases, the same pre-processing and the same aggregation (No Finding positive only when nothing but
 * Support Devices is positive or uncertain; "chf"/"heart failure" also make Cardiomegaly uncertain).
 *
 * Negation and uncertainty are where it differs: the CheXpert labeler parses each sentence (BLLIP + Universal
 * Dependencies) and matches NegBio's graph patterns; raddraft uses NegEx-style surface rules (Chapman et al. 2001)
 * built from the trigger words of those pattern files (patterns/negation.txt, pre_negation_uncertainty.txt,
 * post_negation_uncertainty.txt), applied in NegBio's order (pre-negation uncertainty, negation, uncertainty): a
 * trigger before a mention within the same clause, or a few after it. Where the graph patterns say which word a
 * trigger governs, the surface rules follow them: a negation distributes over a coordinated list; "or" makes only
 * the alternatives it joins uncertain; a hedge after a finding concerns it only as its subject ("effusion may be
 * present"), not when the finding is named before the hedge's verb ("opacity may represent atelectasis");
 * stable/unchanged is uncertainty for the heart and mediastinal outlines only; and words the pattern files do not
 * have ("likely", "probably", "suggestive of") hedge nothing. It needs no parser or model, and on the labeler's own
 * sample reports gives the labeler's labels (see the tests).
 *
 * It lives on the ground floor because both the quality figures (eval) and the checks of each draft (model/safety)
 * read reports with it.
 */

export const OBSERVATIONS = [
  'No Finding', 'Enlarged Cardiomediastinum', 'Cardiomegaly', 'Lung Lesion', 'Lung Opacity', 'Edema', 'Consolidation',
  'Pneumonia', 'Atelectasis', 'Pneumothorax', 'Pleural Effusion', 'Pleural Other', 'Fracture', 'Support Devices',
] as const;
export type Observation = (typeof OBSERVATIONS)[number];

/** 1 positive, 0 negative, -1 uncertain; an observation not mentioned is absent. */
export type Label = 1 | 0 | -1;
export type Labels = Partial<Record<Observation, Label>>;

const MENTIONS: Record<Exclude<Observation, 'No Finding'>, string[]> = {
  Atelectasis: ['atelecta', 'collapse'],
  Cardiomegaly: ['cardiomegaly', 'the heart', 'heart size', 'cardiac enlargement', 'cardiac size', 'cardiac shadow', 'cardiac contour', 'cardiac silhouette', 'enlarged heart'],
  Consolidation: ['consolidat'],
  Edema: ['edema', 'heart failure', 'chf', 'vascular congestion', 'pulmonary congestion', 'indistinctness', 'vascular prominence'],
  'Enlarged Cardiomediastinum': [' mediastinum', 'cardiomediastinum', 'contour', 'mediastinal configuration', 'mediastinal silhouette', 'pericardial silhouette', 'cardiac silhouette and vascularity'],
  Fracture: ['fracture'],
  'Lung Lesion': ['mass', 'nodular density', 'nodular densities', 'nodular opacity', 'nodular opacities', 'nodular opacification', 'nodule', 'lump', 'cavitary lesion', 'carcinoma', 'neoplasm', 'tumor'],
  'Lung Opacity': ['opaci', 'decreased translucency', 'increased density', 'airspace disease', 'air-space disease', 'air space disease', 'infiltrate', 'infiltration', 'interstitial marking', 'interstitial pattern', 'interstitial lung', 'reticular pattern', 'reticular marking', 'reticulation', 'parenchymal scarring', 'peribronchial thickening', 'wall thickening', 'scar'],
  'Pleural Effusion': ['pleural fluid', 'effusion'],
  'Pleural Other': ['pleural thickening', 'fibrosis', 'fibrothorax', 'pleural scar', 'pleural parenchymal scar', 'pleuro-parenchymal scar', 'pleuro-pericardial scar'],
  Pneumonia: ['pneumonia', 'infection', 'infectious process', 'infectious'],
  Pneumothorax: ['pneumothorax', 'pneumothoraces'],
  'Support Devices': ['pacer', ' line ', 'lines', 'picc', 'tube', 'valve', 'catheter', 'pacemaker', 'hardware', 'arthroplast', 'marker', 'icd', 'defib', 'device', 'drain ', 'plate', 'screw', 'cannula', 'apparatus', 'coil', 'support', 'equipment', 'mediport'],
};

/** Findings that are none of the 14 but still mean the study is not normal (phrases/mention/no_finding.txt). */
const OTHER_FINDINGS = ['emphysema', 'blunt', 'density', 'elevation', 'eventration', 'scoliosis', 'degenera', 'calcifi', 'hyperinflation', 'bronchospasm', 'asthma', 'hernia', 'copd', 'interstitial markings', 'plaque', 'osteophytosis', 'aortic disease', 'bronchiolitis', 'airways disease', 'thickening', 'cephalization', 'aspiration', 'bullae', 'hyperinflat', 'contusion', 'atherosclero', 'osteopenia', 'metastasis', 'granuloma', 'pneumomediastinum', 'pneumoperitoneum', 'osteodystrophy', 'cuffing', 'irregular lucency', 'inflam', 'fissure', 'hypertension', 'prominen', 'kyphosis', 'defib', 'hyperexpansion', 'bullet', 'reticula', 'thoracentesis', 'bronchitis', 'volume loss', 'deformity', 'hemorrhage', 'hematoma', 'radiopaque', 'aerophagia', 'arthropathy', 'tracheostomy'];

const POSITIONAL = ['over the', 'overly the', 'in the'].flatMap((p) => ['', ' superior', ' left', ' right'].map((s) => `${p}${s}`));
const UNMENTIONS: Partial<Record<Observation, string[]>> = {
  'Lung Lesion': ['calcified nodul', 'massive', 'massengale'],
  'Lung Opacity': ['pleural scar'],
  'Pleural Effusion': ['pericardial effusion'],
  // Generated as add_unmention_phrases does: a positional phrase before a heart or mediastinum mention names a place.
  Cardiomegaly: POSITIONAL.flatMap((p) => MENTIONS.Cardiomegaly.filter((m) => m !== 'cardiomegaly' && m !== 'cardiac enlargement').map((m) => `${p} ${m.replace('the ', '')}`)),
  'Enlarged Cardiomediastinum': POSITIONAL.flatMap((p) => MENTIONS['Enlarged Cardiomediastinum'].map((m) => `${p} ${m}`)),
};

/** The labeler's loader/load.py clean-up. */
export function prepareReport(text: string): string {
  return ` ${text
    .toLowerCase()
    .replace(/and\/or/g, 'or')
    .replace(/(?<=[a-z])\/(?=[a-z])/g, ' or ')
    .replace(/\.\./g, '.')
    .replace(/([.,])/g, '$1 ')
    .replace(/\s+/g, ' ')
    .replace(/\.\s+\./g, '.')
    .trim()} `;
}

/** Sentences, split where NegBio's splitter would (a full stop, ?, ! or ; followed by a space, or a line break). */
function splitSentences(text: string): string[] {
  return text.split(/(?<=[.?!;])\s+|\n+/).map((s) => ` ${s.trim()} `).filter((s) => s.trim());
}

// Clause boundaries stop a trigger's reach (NegEx's termination terms). A comma does not: "without consolidation,
// effusion or pneumothorax" negates all three.
const TERMINATORS = /\b(but|however|although|though|except|aside from|apart from|whereas|which|while|yet|otherwise|nevertheless)\b|[;:]/g;

// Uncertain although they contain a negation word (pre_negation_uncertainty.txt): checked first.
const PRE_NEG_UNCERTAIN_BEFORE = /\b(cannot|can ?not|could not|can't) (be )?(exclude|excluded|rule out|ruled out)\b|\bno new\b|\bno evidence to rule out\b|\bnot (be )?excluded\b/;
const PRE_NEG_UNCERTAIN_AFTER = /^[^.]{0,40}?\b(is|are|cannot be|can not be|could not be|not)\s+(not\s+)?(excluded|ruled out)\b/;

// negation.txt's triggers before a finding. A negation distributes over a coordination ("no consolidation, large
// effusion or pneumothorax"), so the reach runs back over list items as well as over the last few words.
const NEGATION_TRIGGERS = 'no|not|without|negative for|free of|absence of|absent|resolution of|resolved|disappearance of|removal of|interval resolution of|clear of|rules? out|ruled out|exclude[sd]?|rather than|no evidence of|no evidence for|no sign of|no signs of|no definite|no obvious|no focal|no focus of|no area of|no development of|nor';
const NEGATION_BEFORE = new RegExp(`\\b(${NEGATION_TRIGGERS})\\b`);
// A trigger followed only by list items: words that are not verbs or clause-joining prepositions, commas, or/and/nor.
const LIST_WORD = String.raw`(?!(?:is|are|was|were|be|been|has|have|had|with|there|seen|noted|present|demonstrates?|shows?)\b)[a-z][a-z'-]*`;
const NEGATED_LIST = new RegExp(String.raw`\b(${NEGATION_TRIGGERS})\b(?:\s*,|\s+${LIST_WORD}){1,16}\s*,?\s*$`);
// Adjectives that negate only what they directly qualify ("normal heart size", not "normal heart, small effusion").
const NEGATION_ADJECTIVE = /\b(normal|unremarkable)\s*$/;
const NEGATION_AFTER = /^[^.]{0,60}?\b((is|are|has|have|was|were) (been )?(resolved|removed|cleared|absent|excluded|ruled out)|(is|are|was|were) (now )?(not|no longer) (seen|visible|present|identified|appreciated|enlarged)|no longer (seen|visible|present)|not (seen|visualized|present|identified|enlarged)|resolved|removed|(is|are|appears?|remains?|seems?) (normal|unremarkable|within normal limits|clear)|(is|are) normal in size|(is|are) of normal size|normal in size|within normal limits|(is|are)? ?(at|within) (the )?upper limits? of normal|normal|unremarkable|clear|cleared|clearing|absent)\b/;

// post_negation_uncertainty.txt's words that make the finding they govern or modify uncertain. Words the labeler's
// patterns do not have ("likely", "probably", "suggestive of", "borderline" but for the heart size) are not hedges.
const UNCERTAIN_BEFORE = /\b(possible|possibly|presumably|probable|questionable|suspect|suspected|suspicious( for)?|question of|suggestion of|concern for|concerning for|suspicion (for|of)|worrisome for|favou?r(s|ed|ing)?|consider(ing)?|differential diagnosis|correlate clinically( for)?|maybe|versus|vs|obscur(ed|ing)|secondary to|(may|might|would|could|can|possibly) (also )?(be|represent|reflect|indicate|include)|(may|might|would|could|can|possibly) (also )?be (due|related|compatible|consistent) (to|with)|(is|are|be) compatible with)\b/;
// Hedges after a finding concern it only when it is their subject ("effusion is possible"), never a finding named
// after the hedge's verb ("opacity may represent atelectasis" leaves the opacity positive).
const UNCERTAIN_AFTER = /^\s*(\s[a-z-]+){0,4}?\s+(versus|vs|(is|are|was|were)( also)? possible|(is|are|was|were) suspected|(may|might|could|can|possibly) (also )?be present|(could|may|might|can) appear|(is|are)? ?less likely|(is|are|was|were)? ?(poorly|incompletely) evaluated|(is|are|was|were)? ?not well (visualized|evaluated)|(is|are|was|were)? ?not clearly (seen|visualized)|(is|are|was|were)? ?obscured|(is|are|was|were) not appreciated)\b/;
// "X or Y": the labeler's conj:or pattern makes the alternatives joined by "or" uncertain, not every finding near it.
const OR_AFTER = /^\s*,?\s*(or|versus|vs)\b/;
const OR_BEFORE = /\b(or|versus|vs)\s+([a-z-]+\s+){0,2}$/;

// Heart and mediastinum outlines described as stable, unchanged or similar are uncertain (post_negation_uncertainty.txt
// has this for the outlines only), and so is a borderline heart size.
const OUTLINE_MENTIONS = new Set(['heart size', 'the heart', 'cardiac silhouette', 'cardiac contour', 'cardiac size', 'cardiac shadow', 'contour', 'cardiomediastinum', 'mediastinal silhouette', ' mediastinum', 'pericardial silhouette', 'mediastinal configuration']);
const OUTLINE_STABLE_BEFORE = /\b(stable|unchanged|similar|borderline|grossly stable)\b/;
const OUTLINE_STABLE_AFTER = /^\s*(is|are|remains?|appears?)?\s*(stable|unchanged|similar|borderline|not changed)\b/;
const ALWAYS_UNCERTAIN = new Set(['vascular congestion', 'pulmonary congestion', 'indistinctness', 'vascular prominence']);

/** The words of the clause that reaches the mention from the left (after the last terminator). */
function clauseBefore(sentence: string, index: number): string {
  const before = sentence.slice(0, index);
  let cut = 0;
  for (const m of before.matchAll(TERMINATORS)) cut = m.index + m[0].length;
  return before.slice(cut);
}

/** Up to the next terminator to the right of the mention. */
function clauseAfter(sentence: string, end: number): string {
  const after = sentence.slice(end);
  TERMINATORS.lastIndex = 0;
  const m = after.search(TERMINATORS);
  return m < 0 ? after : after.slice(0, m);
}

/** The last `words` words of a text. */
function lastWords(text: string, words: number): string {
  return text.trim().split(/\s+/).slice(-words).join(' ');
}

function negated(before: string, after: string): boolean {
  return NEGATION_BEFORE.test(lastWords(before, 6)) || NEGATED_LIST.test(before) || NEGATION_ADJECTIVE.test(lastWords(before, 1)) || NEGATION_AFTER.test(after);
}

function uncertain(phrase: string, before: string, after: string): boolean {
  if (ALWAYS_UNCERTAIN.has(phrase)) return true;
  if (OUTLINE_MENTIONS.has(phrase) && (OUTLINE_STABLE_BEFORE.test(lastWords(before, 4)) || OUTLINE_STABLE_AFTER.test(after))) return true;
  // Hedges after a mention reach only to the next comma ("opacity in the lingula, may reflect atelectasis").
  return UNCERTAIN_BEFORE.test(lastWords(before, 6)) || UNCERTAIN_AFTER.test(after.split(',')[0]!) || OR_AFTER.test(after) || OR_BEFORE.test(before);
}

/**
 * NegBio's order: pre-negation uncertainty, then negation, then the other uncertainty patterns. `sentence` is one
 * prepared sentence (see `preparedSentences`) and `index` where `phrase` starts in it; any phrase can be classified,
 * not only the labeler's own mentions.
 */
export function classify(sentence: string, phrase: string, index: number): Label {
  // A stem ("atelecta", "consolidat") is read to the end of its word, so what follows starts at the next word.
  const end = index + phrase.length + (/[a-z]$/.test(phrase) ? /^[a-z]*/.exec(sentence.slice(index + phrase.length))![0].length : 0);
  const before = clauseBefore(sentence, index);
  const after = clauseAfter(sentence, end);
  if (PRE_NEG_UNCERTAIN_BEFORE.test(lastWords(before, 8)) || PRE_NEG_UNCERTAIN_AFTER.test(after)) return -1;
  if (/^\s*(findings|impression)\s*:\s*no\b/.test(sentence) && !/\b(but|however)\b/.test(sentence.slice(0, index))) return 0;
  if (negated(before, after)) return 0;
  if (uncertain(phrase, before, after)) return -1;
  // A heart or outline mention that is neither enlarged nor otherwise described is a description, not a finding.
  if (OUTLINE_MENTIONS.has(phrase) && !/\b(enlarge|widen|increas|promin|cardiomegaly|large|big)/.test(`${lastWords(before, 4)} ${after}`)) return 0;
  return 1;
}

export interface Mention {
  observation: Observation | 'other';
  phrase: string;
  index: number;
}

/** The labeler's mentions in one prepared sentence, in no particular order. */
export function mentionsIn(sentence: string): Mention[] {
  const found: Mention[] = [];
  const find = (observation: Observation | 'other', phrases: string[], unmentions: string[] = []) => {
    const blocked: [number, number][] = [];
    for (const u of unmentions) for (let i = sentence.indexOf(u); i >= 0; i = sentence.indexOf(u, i + 1)) blocked.push([i, i + u.length]);
    for (const phrase of phrases) {
      for (let i = sentence.indexOf(phrase); i >= 0; i = sentence.indexOf(phrase, i + 1)) {
        if (blocked.some(([s, e]) => i < e && s < i + phrase.length)) continue;
        found.push({ observation, phrase, index: i });
      }
    }
  };
  for (const [obs, phrases] of Object.entries(MENTIONS) as [Exclude<Observation, 'No Finding'>, string[]][]) find(obs, phrases, UNMENTIONS[obs]);
  find('other', OTHER_FINDINGS);
  return found;
}

/** Several labels for one observation: positive wins, then uncertain (aggregate.py, ignoring its one quirk). */
function merge(a: Label | undefined, b: Label): Label {
  if (a === undefined) return b;
  if (a === 1 || b === 1) return 1;
  if (a === -1 || b === -1) return -1;
  return 0;
}

/** The report prepared and split as the labeler reads it: lower case, padded with a space at each end. */
export function preparedSentences(text: string): string[] {
  return splitSentences(prepareReport(text));
}

export function labelReport(text: string): Labels {
  const labels: Labels = {};
  let noFinding = true;
  for (const sentence of splitSentences(prepareReport(text))) {
    for (const m of mentionsIn(sentence)) {
      const label = classify(sentence, m.phrase, m.index);
      if (label !== 0 && m.observation !== 'Support Devices') noFinding = false;
      if (m.observation === 'other') continue;
      labels[m.observation] = merge(labels[m.observation], label);
      if (label !== 0 && (m.phrase === 'chf' || m.phrase === 'heart failure')) labels.Cardiomegaly = merge(labels.Cardiomegaly, -1);
    }
  }
  if (noFinding) labels['No Finding'] = 1;
  return labels;
}
