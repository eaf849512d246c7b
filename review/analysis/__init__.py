"""Analysis: what the reviewed detections add up to.

Owns mined area per period and region with honest uncertainty (trends), period labels
(periods), detections grouped by place across periods (sites, with their geometry in
site_grouping) and their trend (site_trends), random samples for an estimate (sampling),
areas of interest (areas), the data the Map draws (map_layers) and the binary message that carries it (map_payload), and area assessment: a
stratified random sample of labelled points over a region (assessment), the estimators of
area and accuracy with their intervals and sample-size planning (area_estimate) and a
design's estimate from its labels (area_results); context layers (territories, protected
areas, concessions) and what overlaps them (context); a place's spectral time series
(spectral_series, spectral_pixels) and the month it changed (onset).

May import: the root modules, detection, judging and review_imagery.
"""
