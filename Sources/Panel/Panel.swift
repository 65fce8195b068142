public enum PanelModule {}
