/** Formats a duration in seconds as e.g. "45s", "3m 12s", "2h 5m", "4d 3h". */
export function formatUptime(totalSecs: number): string {
  const s = Math.max(0, Math.floor(totalSecs));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3_600);
  const minutes = Math.floor((s % 3_600) / 60);
  const seconds = s % 60;
  if (days > 0) return `${days}d ${hours}h`;
  if (hours > 0) return `${hours}h ${minutes}m`;
  if (minutes > 0) return `${minutes}m ${seconds}s`;
  return `${seconds}s`;
}
