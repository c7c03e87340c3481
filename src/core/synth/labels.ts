/**
 * Tissue labels of the synthetic generator: every rendered pixel gets one, so tests can check HU
 * statistics inside organ masks and labels (nodules, emboli) come from the same rendering as the
 * pixels. Values fit a Uint8Array.
 */
export const T = {
  AIR: 0,
  TABLE: 1,
  SKIN: 2,
  FAT: 3,
  MUSCLE: 4,
  BONE_CORTEX: 5,
  BONE_MARROW: 6,
  CARTILAGE: 7,
  LUNG: 8,
  MED_FAT: 9,
  MYOCARDIUM: 10,
  /** Contrast-filled right heart and central pulmonary arteries (RA, RV, trunk, main branches). */
  BLOOD_RIGHT: 11,
  /** Left heart, aorta and its branches (less enhanced in the pulmonary-arterial phase). */
  BLOOD_LEFT: 12,
  /** Pulmonary artery branches inside the lungs (contrast-filled). */
  PA_TREE: 13,
  /** Pulmonary vein branches inside the lungs. */
  VEIN_TREE: 14,
  AIRWAY: 15,
  AIRWAY_WALL: 16,
  LIVER: 17,
  SPLEEN: 18,
  STOMACH: 19,
  BREAST: 20,
  CSF: 21,
  ESOPHAGUS: 22,
  NODULE: 23,
  EMBOLUS: 24,
  /** Systemic veins carrying undiluted contrast (SVC, brachiocephalic veins). */
  VEIN_CONTRAST: 25,
  DISC: 26,
  /** Unenhanced systemic veins and other soft tissue of the neck and mediastinum. */
  SOFT: 27,
} as const;

export type TissueLabel = (typeof T)[keyof typeof T];

export const LABEL_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k.toLowerCase()]));
