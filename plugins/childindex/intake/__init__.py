"""Intake: pick up complete files from an agency's drop folder, and receive, check and stage each."""

from childindex.intake.process import IntakeResult, check_file, pending_files, process_file, reprocess, run_intake

__all__ = ["IntakeResult", "check_file", "pending_files", "process_file", "reprocess", "run_intake"]
