"""The trading vocabulary and its pure rules — positions and P&L, client order ids, the S2.2/S3.2
copy rule, the S5 figures and triggers, the S5.8 resets, the S5.6 retry schedule, activity kinds
and levels — as plain values and functions that import nothing of ours."""
