/** An image as the model receives it, with the view it shows. */
export interface ModelImage {
  png: Buffer;
  view: string;
}

/** A study that cannot be drafted (not a chest X-ray, unreadable image, missing file): the reason is recorded. */
export class StudyInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StudyInputError';
  }
}
