package walink

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test
import uniffi.walink_ffi.version

class VersionTest {
    @Test
    fun versionIsTheWorkspaceVersion() {
        assertEquals(System.getProperty("walink.version"), version())
    }
}
