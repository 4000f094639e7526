// Counters for browser tests and for curious users: window.__runstream.
//   fetches          /api/scalars and /api/scalar_groups requests sent
//   lastScalarQuery  the parameters of the last one (group_by only in a grouped one)
//   chartsDrawn      scalar charts drawn (each redraw counts)
//   firstChartsAt    performance.now() when the first batch of visible charts had drawn

const initial = () => ({ fetches: 0, lastScalarQuery: null, chartsDrawn: 0, firstChartsAt: null });

export const counters =
  typeof window === 'undefined' ? initial() : (window.__runstream = window.__runstream || initial());
