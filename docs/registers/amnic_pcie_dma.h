/* pcie_dma register block: generated from its description; do not edit. */
#ifndef AMNIC_PCIE_DMA_H
#define AMNIC_PCIE_DMA_H

#define AMNIC_PCIE_DMA_TYPE_ID_VALUE                     0x50444D41u
#define AMNIC_PCIE_DMA_VERSION_VALUE                     0x00010000u
#define AMNIC_PCIE_DMA_SIZE_VALUE                        0x100u

#define AMNIC_PCIE_DMA_TYPE_ID_OFFSET                    0x000u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_TYPE_ID_RESET                     0x50444D41u
#define AMNIC_PCIE_DMA_VERSION_OFFSET                    0x004u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_VERSION_RESET                     0x10000u
#define AMNIC_PCIE_DMA_SIZE_OFFSET                       0x008u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_SIZE_RESET                        0x100u
#define AMNIC_PCIE_DMA_SCRATCH_OFFSET                    0x00Cu  /* RW, 32 bit */
#define AMNIC_PCIE_DMA_SCRATCH_RESET                     0x0u
#define AMNIC_PCIE_DMA_LINK_OFFSET                       0x010u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_LINK_RESET                        0x0u
#define AMNIC_PCIE_DMA_LINK_MAX_PAYLOAD_SHIFT            0
#define AMNIC_PCIE_DMA_LINK_MAX_PAYLOAD_MASK             0x7u
#define AMNIC_PCIE_DMA_LINK_MAX_READ_REQUEST_SHIFT       3
#define AMNIC_PCIE_DMA_LINK_MAX_READ_REQUEST_MASK        0x38u
#define AMNIC_PCIE_DMA_INTERFACE_OFFSET                  0x014u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_INTERFACE_RESET                   0x0u
#define AMNIC_PCIE_DMA_INTERFACE_WIDTH_SHIFT             0
#define AMNIC_PCIE_DMA_INTERFACE_WIDTH_MASK              0x3FFu
#define AMNIC_PCIE_DMA_INTERFACE_BAR_BITS_SHIFT          10
#define AMNIC_PCIE_DMA_INTERFACE_BAR_BITS_MASK           0xFC00u
#define AMNIC_PCIE_DMA_INTERFACE_RQ_STRADDLE_SHIFT       16
#define AMNIC_PCIE_DMA_INTERFACE_RQ_STRADDLE_MASK        0x10000u
#define AMNIC_PCIE_DMA_INTERFACE_RC_STRADDLE_SHIFT       17
#define AMNIC_PCIE_DMA_INTERFACE_RC_STRADDLE_MASK        0x20000u
#define AMNIC_PCIE_DMA_MMIO_READS_OFFSET                 0x018u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_MMIO_READS_RESET                  0x0u
#define AMNIC_PCIE_DMA_MMIO_WRITES_OFFSET                0x01Cu  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_MMIO_WRITES_RESET                 0x0u
#define AMNIC_PCIE_DMA_UNSUPPORTED_OFFSET                0x020u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_UNSUPPORTED_RESET                 0x0u
#define AMNIC_PCIE_DMA_MALFORMED_OFFSET                  0x024u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_MALFORMED_RESET                   0x0u
#define AMNIC_PCIE_DMA_BUS_ERRORS_OFFSET                 0x028u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_BUS_ERRORS_RESET                  0x0u
#define AMNIC_PCIE_DMA_WRITE_TLPS_OFFSET                 0x02Cu  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_WRITE_TLPS_RESET                  0x0u
#define AMNIC_PCIE_DMA_READ_TIMEOUTS_OFFSET              0x030u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_READ_TIMEOUTS_RESET               0x0u
#define AMNIC_PCIE_DMA_UNEXPECTED_COMPLETIONS_OFFSET     0x034u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_UNEXPECTED_COMPLETIONS_RESET      0x0u
#define AMNIC_PCIE_DMA_READS_OUTSTANDING_OFFSET          0x038u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_READS_OUTSTANDING_RESET           0x0u
#define AMNIC_PCIE_DMA_HOST_PORT_ERRORS_OFFSET           0x03Cu  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_HOST_PORT_ERRORS_RESET            0x0u
#define AMNIC_PCIE_DMA_MSIX_SENT_OFFSET                  0x040u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_MSIX_SENT_RESET                   0x0u
#define AMNIC_PCIE_DMA_MSIX_FAILED_OFFSET                0x044u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_MSIX_FAILED_RESET                 0x0u
#define AMNIC_PCIE_DMA_WINDOW_REFUSED_OFFSET             0x048u  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_WINDOW_REFUSED_RESET              0x0u
#define AMNIC_PCIE_DMA_READ_ERRORS_OFFSET                0x04Cu  /* RO, 32 bit */
#define AMNIC_PCIE_DMA_READ_ERRORS_RESET                 0x0u
#define AMNIC_PCIE_DMA_CONTROL_OFFSET                    0x080u  /* RW, 32 bit */
#define AMNIC_PCIE_DMA_CONTROL_RESET                     0x0u
#define AMNIC_PCIE_DMA_CONTROL_LOOPBACK_SHIFT            0
#define AMNIC_PCIE_DMA_CONTROL_LOOPBACK_MASK             0x1u
#define AMNIC_PCIE_DMA_CONTROL_WINDOW_SHIFT              1
#define AMNIC_PCIE_DMA_CONTROL_WINDOW_MASK               0x2u
#define AMNIC_PCIE_DMA_READ_TIMEOUT_OFFSET               0x084u  /* RW, 32 bit */
#define AMNIC_PCIE_DMA_READ_TIMEOUT_RESET                0x100000u
#define AMNIC_PCIE_DMA_READ_TIMEOUT_CYCLES_SHIFT         0
#define AMNIC_PCIE_DMA_READ_TIMEOUT_CYCLES_MASK          0x3FFFFFFu
#define AMNIC_PCIE_DMA_WINDOW_BASE_OFFSET                0x088u  /* RW, 64 bit */
#define AMNIC_PCIE_DMA_WINDOW_BASE_HI_OFFSET             0x08Cu
#define AMNIC_PCIE_DMA_WINDOW_BASE_RESET                 0x0ull
#define AMNIC_PCIE_DMA_WINDOW_LIMIT_OFFSET               0x090u  /* RW, 64 bit */
#define AMNIC_PCIE_DMA_WINDOW_LIMIT_HI_OFFSET            0x094u
#define AMNIC_PCIE_DMA_WINDOW_LIMIT_RESET                0x0ull
#define AMNIC_PCIE_DMA_WINDOW_FAULT_OFFSET               0x098u  /* RO, 64 bit */
#define AMNIC_PCIE_DMA_WINDOW_FAULT_HI_OFFSET            0x09Cu
#define AMNIC_PCIE_DMA_WINDOW_FAULT_RESET                0x0ull

#endif /* AMNIC_PCIE_DMA_H */
