/** The China calendar day (UTC+8) of an instant, `YYYY-MM-DD`: the day a provider's bill lists it under. */
export function chinaDay(at: Date): string {
  return new Date(at.getTime() + 8 * 3600_000).toISOString().slice(0, 10);
}
