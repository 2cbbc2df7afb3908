"""Evaluation of the answering chain: RAGAS faithfulness, retrieval and citation metrics, trend and thresholds."""

import os

# Nothing may reach the network: ragas posts usage statistics unless told not to, and it reads this
# once, so it is set before any ragas import (eval is the only package that imports ragas).
os.environ["RAGAS_DO_NOT_TRACK"] = "true"
