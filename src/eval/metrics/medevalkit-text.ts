/**
 * Texts and tokens as MedEvalKit's report scorer builds them (alibaba-damo-academy/MedEvalKit,
 * utils/Metrics_Compute/cal_report_metrics.py), so that raddraft's BLEU and ROUGE-L can be set beside Lingshu's
 * published figures.
 */

/** The reference as MedEvalKit writes it: `f"Findings: {findings} Impression: {impression}."` (a trailing "." even after one). */
export function medEvalKitReference(findings: string, impression: string): string {
  return `Findings: ${findings} Impression: ${impression}.`;
}

/**
 * MedEvalKit's `prep_reports`: lower-case, "." made a token of its own, split on single spaces, empty strings
 * dropped. Other punctuation stays on its word and a newline does not split, exactly as there.
 */
export function medEvalKitTokens(text: string): string[] {
  return text.toLowerCase().replace(/\./g, ' .').split(' ').filter((t) => t !== '');
}
